/* A small balancer loop over fake VMs, driving CAVMem agents through the C interface:
 * no malloc for the agents (static buffers sized by cavmem_agent_size), a Bid Analyzer call
 * for the whole node each step, a snapshot saved and loaded into a second agent, every
 * policy through every agent call, and a check that bad input is refused with an error
 * code, all on a 16 KiB thread stack. Exit
 * status 0 when every check holds. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cavmem.h"

#define VMS 2
#define STEPS 300
#define GIB (1024ull * 1024ull * 1024ull)

/* Agent memory: static, generously sized and aligned; the sizes are checked at run time. */
static _Alignas(64) uint8_t agent_mem[VMS][300 * 1024];
static _Alignas(64) uint8_t copy_mem[300 * 1024];
static uint8_t snapshot[32 * 1024];

static int failures = 0;
#define CHECK(cond, what)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "balancer: check failed: %s (line %d)\n", what, __LINE__); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

/* A fake VM: its miss rate falls as its allocation approaches a demand that drifts. */
static float miss_rate(uint64_t alloc, uint64_t demand) {
    if (alloc >= demand) return 0.0f;
    return 20000.0f * (float)(demand - alloc) / (float)demand;
}

/* `balancer SNAPSHOT`: load a DDPG snapshot file and print the greedy bid's bits for 101
 * fixed observations (msr = -1 + k/50), one per line, so a test can compare them with other
 * hosts of the same snapshot. */
static int print_bids(const char *path) {
    static uint8_t bytes[32 * 1024];
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 2;
    }
    size_t len = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    CavmemConfig config = {.policy = CAVMEM_POLICY_DDPG, .vm_count = 2, .seed = 1, .explore_steps = 1, .anneal_steps = 1};
    if (cavmem_agent_init(agent_mem[0], sizeof agent_mem[0], &config) != CAVMEM_STATUS_OK ||
        cavmem_load_snapshot(agent_mem[0], bytes, len) != CAVMEM_STATUS_OK) {
        fprintf(stderr, "%s: snapshot refused\n", path);
        return 2;
    }
    cavmem_set_exploration(agent_mem[0], 0);
    for (int k = 0; k <= 100; k++) {
        float obs[5] = {-1.0f + (float)k * 0.02f, 0.3f, 0.1f, -0.2f, 0.6f};
        float bid;
        if (cavmem_act(agent_mem[0], obs, &bid) != CAVMEM_STATUS_OK) return 2;
        uint32_t bits;
        memcpy(&bits, &bid, sizeof bits);
        printf("%08x\n", (unsigned)bits);
    }
    return 0;
}

/* Every policy through every agent call on this thread: set up, 70 acts, records and
 * learns (past the deep learners' 64-transition warm-up), counters, a snapshot saved and
 * loaded back; and a configuration with no VMs refused. */
static void every_policy(void) {
    static _Alignas(64) uint8_t mem[1300 * 1024];
    static uint8_t bytes[1300 * 1024];
    const char *names[] = {"DDPG", "DQN", "Q-learning", "equal split"};
    for (uint32_t policy = 0; policy < 4; policy++) {
        CHECK(cavmem_agent_size(policy) <= sizeof mem, "agent fits the shared buffer");
        CavmemConfig config = {.policy = policy, .vm_count = 0, .seed = 3, .explore_steps = 10, .anneal_steps = 10};
        CHECK(cavmem_agent_init(mem, sizeof mem, &config) == CAVMEM_STATUS_BAD_CONFIG, "no VMs refused");
        config.vm_count = VMS;
        CHECK(cavmem_agent_init(mem, sizeof mem, &config) == CAVMEM_STATUS_OK, "init, every policy");
        float obs[5] = {0.1f, 0.3f, 0.0f, -0.1f, 0.6f}, bid = 0.0f, loss = 0.0f;
        for (int k = 0; k < 70; k++) {
            CHECK(cavmem_act(mem, obs, &bid) == CAVMEM_STATUS_OK, "act, every policy");
            CHECK(cavmem_record(mem, obs, bid, -0.5f, obs, 0) == CAVMEM_STATUS_OK, "record, every policy");
            CHECK(cavmem_learn(mem, &loss) == CAVMEM_STATUS_OK, "learn, every policy");
        }
        CavmemStats stats;
        CHECK(cavmem_stats(mem, &stats) == CAVMEM_STATUS_OK && stats.acts == 70, "stats, every policy");
        size_t written = 0;
        CHECK(cavmem_save_snapshot(mem, bytes, sizeof bytes, &written) == CAVMEM_STATUS_OK, "save, every policy");
        CHECK(cavmem_load_snapshot(mem, bytes, written) == CAVMEM_STATUS_OK, "load, every policy");
        printf("%s: %zu-byte agent, %zu-byte snapshot saved and loaded\n", names[policy], cavmem_agent_size(policy), written);
    }
}

/* The balancer loop; 0 when every check holds. */
static int balance(void) {
    every_policy();
    const uint32_t policy = CAVMEM_POLICY_DDPG;
    size_t need = cavmem_agent_size(policy);
    CHECK(need > 0 && need <= sizeof agent_mem[0], "agent fits its buffer");
    CHECK(cavmem_agent_align() <= 64, "alignment");
    printf("DDPG agent: %zu bytes, alignment %zu\n", need, cavmem_agent_align());

    CavmemConfig config = {.policy = policy, .vm_count = VMS, .seed = 7, .explore_steps = 100, .anneal_steps = 100};
    for (int j = 0; j < VMS; j++) {
        config.seed = 7 + (uint64_t)j;
        CHECK(cavmem_agent_init(agent_mem[j], sizeof agent_mem[j], &config) == CAVMEM_STATUS_OK, "init");
    }

    CavmemNode node = {.capacity_bytes = 6 * GIB, .floor_bytes = 384ull << 20, .granularity_bytes = 1ull << 20, .share = 0};
    uint64_t alloc[VMS] = {GIB, GIB};
    float obs[VMS][5];
    for (int step = 0; step < STEPS; step++) {
        uint64_t demand[VMS] = {(2 + (step / 50) % 3) * GIB, (4 - (step / 50) % 3) * GIB};
        float rate[VMS], bids[VMS];
        float avg = 0.0f, use = 0.0f;
        for (int j = 0; j < VMS; j++) {
            rate[j] = miss_rate(alloc[j], demand[j]);
            avg += (2.0f * rate[j] / 60000.0f - 1.0f) / VMS;
            use += (float)alloc[j] / (float)node.capacity_bytes;
        }
        for (int j = 0; j < VMS; j++) {
            float o[5] = {2.0f * rate[j] / 60000.0f - 1.0f, (float)alloc[j] / (float)node.capacity_bytes, avg, avg, use};
            memcpy(obs[j], o, sizeof o);
            CHECK(cavmem_act(agent_mem[j], obs[j], &bids[j]) == CAVMEM_STATUS_OK, "act");
            CHECK(bids[j] >= -1.0f && bids[j] <= 1.0f, "bid in range");
        }
        uint64_t requested[VMS];
        CHECK(cavmem_analyze_bids(&node, alloc, bids, VMS, requested) == CAVMEM_STATUS_OK, "bid analyzer");
        uint64_t total = 0;
        for (int j = 0; j < VMS; j++) {
            CHECK(alloc[j] >= node.floor_bytes, "floor");
            total += alloc[j];
        }
        CHECK(total <= node.capacity_bytes, "capacity");
        for (int j = 0; j < VMS; j++) {
            float next_rate = miss_rate(alloc[j], demand[j]);
            float next[5] = {2.0f * next_rate / 60000.0f - 1.0f, (float)alloc[j] / (float)node.capacity_bytes, avg, avg, use};
            float reward = -(next[0] + 1.0f) * 0.5f;
            float loss = 0.0f;
            CHECK(cavmem_record(agent_mem[j], obs[j], bids[j], reward, next, step % 100 == 99) == CAVMEM_STATUS_OK, "record");
            CHECK(cavmem_learn(agent_mem[j], &loss) == CAVMEM_STATUS_OK, "learn");
        }
    }
    CavmemStats stats;
    CHECK(cavmem_stats(agent_mem[0], &stats) == CAVMEM_STATUS_OK, "stats");
    printf("VM 0: %llu acts, %llu updates, last loss %g; allocations %.2f / %.2f GiB\n",
           (unsigned long long)stats.acts, (unsigned long long)stats.learn_steps, (double)stats.last_loss,
           (double)alloc[0] / GIB, (double)alloc[1] / GIB);
    CHECK(stats.learn_steps > 0, "learned");

    /* Snapshot: save VM 0's policy, load it into a fresh agent, same greedy bids. */
    size_t written = 0;
    CHECK(cavmem_save_snapshot(agent_mem[0], snapshot, sizeof snapshot, &written) == CAVMEM_STATUS_OK, "save");
    config.seed = 99;
    CHECK(cavmem_agent_init(copy_mem, sizeof copy_mem, &config) == CAVMEM_STATUS_OK, "init copy");
    CHECK(cavmem_load_snapshot(copy_mem, snapshot, written) == CAVMEM_STATUS_OK, "load");
    cavmem_set_exploration(agent_mem[0], 0);
    cavmem_set_exploration(copy_mem, 0);
    float a = 0.0f, b = 1.0f;
    CHECK(cavmem_act(agent_mem[0], obs[0], &a) == CAVMEM_STATUS_OK && cavmem_act(copy_mem, obs[0], &b) == CAVMEM_STATUS_OK, "act after load");
    CHECK(memcmp(&a, &b, sizeof a) == 0, "same bid from the loaded snapshot");
    printf("snapshot: %zu bytes; bid %.6f from both agents\n", written, (double)a);

    /* Bad input is an error code, never a crash. */
    float nan_obs[5] = {0.0f / 0.0f, 0.5f, 0.0f, 0.0f, 0.5f};
    float bid = 0.0f;
    CHECK(cavmem_act(agent_mem[0], nan_obs, &bid) == CAVMEM_STATUS_INVALID_INPUT, "NaN observation refused");
    CHECK(cavmem_act(NULL, obs[0], &bid) == CAVMEM_STATUS_NULL_POINTER, "null agent refused");
    CHECK(cavmem_act(agent_mem[0], NULL, &bid) == CAVMEM_STATUS_NULL_POINTER, "null observation refused");
    static _Alignas(64) uint8_t blank[64];
    CHECK(cavmem_act(blank, obs[0], &bid) == CAVMEM_STATUS_NOT_INITIALIZED, "uninitialized agent refused");
    CHECK(cavmem_agent_init(blank, sizeof blank, &config) == CAVMEM_STATUS_BAD_BUFFER, "short buffer refused");
    CHECK(cavmem_agent_init(agent_mem[1] + 1, sizeof agent_mem[1] - 1, &config) == CAVMEM_STATUS_BAD_BUFFER, "misaligned buffer refused");
    config.policy = 42;
    CHECK(cavmem_agent_init(copy_mem, sizeof copy_mem, &config) == CAVMEM_STATUS_BAD_CONFIG, "unknown policy refused");
    snapshot[40] ^= 0x01;
    CHECK(cavmem_load_snapshot(agent_mem[1], snapshot, written) == CAVMEM_STATUS_BAD_SNAPSHOT, "corrupted snapshot refused");
    CHECK(cavmem_load_snapshot(agent_mem[1], snapshot, 10) == CAVMEM_STATUS_BAD_SNAPSHOT, "truncated snapshot refused");
    CavmemNode tiny = {.capacity_bytes = 100, .floor_bytes = 384ull << 20, .granularity_bytes = 1, .share = 0};
    CHECK(cavmem_analyze_bids(&tiny, alloc, (const float[]){0.0f, 0.0f}, VMS, NULL) == CAVMEM_STATUS_INFEASIBLE_NODE, "infeasible node refused");

    /* A large node: 1024 VMs through the scratch-memory variant of the Bid Analyzer. */
    enum { BIG = 1024 };
    static uint64_t big_alloc[BIG], big_req[BIG];
    static float big_bids[BIG];
    static _Alignas(16) uint8_t scratch[BIG * 64];
    CHECK(cavmem_bid_scratch_size(BIG) <= sizeof scratch && cavmem_bid_scratch_align() <= 16, "scratch fits");
    CavmemNode big = {.capacity_bytes = BIG * 2 * GIB, .floor_bytes = 384ull << 20, .granularity_bytes = 1ull << 20, .share = 0};
    for (int j = 0; j < BIG; j++) {
        big_alloc[j] = GIB + (uint64_t)(j % 7) * (64ull << 20);
        big_bids[j] = (float)((j % 21) - 10) / 10.0f;
    }
    CHECK(cavmem_analyze_bids(&big, big_alloc, big_bids, BIG, big_req) == CAVMEM_STATUS_BAD_BUFFER, "too many VMs for the stack variant");
    CHECK(cavmem_analyze_bids_scratch(&big, big_alloc, big_bids, BIG, big_req, scratch, sizeof scratch) == CAVMEM_STATUS_OK, "1024-VM node");
    uint64_t big_total = 0;
    for (int j = 0; j < BIG; j++) {
        CHECK(big_alloc[j] >= big.floor_bytes, "floor, 1024 VMs");
        big_total += big_alloc[j];
    }
    CHECK(big_total <= big.capacity_bytes, "capacity, 1024 VMs");
    CHECK(cavmem_analyze_bids_scratch(&big, big_alloc, big_bids, BIG, NULL, scratch, 100) == CAVMEM_STATUS_BAD_BUFFER, "short scratch refused");

    /* Reservations, limits and weights: VM 0 is reserved 2 GiB, VM 1 limited to 1.5 GiB. */
    CavmemNode four = {.capacity_bytes = 4 * GIB, .floor_bytes = 384ull << 20, .granularity_bytes = 1ull << 20, .share = 0};
    const CavmemVmTerms terms[VMS] = {
        {.min_bytes = 2 * GIB, .max_bytes = UINT64_MAX, .weight = 1},
        {.min_bytes = 0, .max_bytes = 3 * GIB / 2, .weight = 1},
    };
    uint64_t held[VMS] = {GIB, GIB};
    CHECK(cavmem_analyze_bids_terms(&four, terms, held, (const float[]){-1.0f, 1.0f}, VMS, NULL, NULL, 0) == CAVMEM_STATUS_OK, "terms");
    CHECK(held[0] == 2 * GIB && held[1] == 3 * GIB / 2, "reservation raised, limit held");
    const CavmemVmTerms too_much[VMS] = {
        {.min_bytes = 3 * GIB, .max_bytes = UINT64_MAX, .weight = 1},
        {.min_bytes = 3 * GIB, .max_bytes = UINT64_MAX, .weight = 1},
    };
    CHECK(cavmem_analyze_bids_terms(&four, too_much, held, (const float[]){0.0f, 0.0f}, VMS, NULL, NULL, 0) == CAVMEM_STATUS_INFEASIBLE_NODE, "reservations over capacity refused");

    if (failures) {
        fprintf(stderr, "balancer: %d check(s) failed\n", failures);
        return 1;
    }
    printf("balancer: all checks passed\n");
    return 0;
}

static void *balance_thread(void *result) {
    *(int *)result = balance();
    return NULL;
}

/* The balancer runs on a thread with a 16 KiB stack, as a hypervisor or firmware task would:
 * every call, agent setup, learning and snapshots included, fits in it. */
#define STACK_BYTES (16 * 1024)

int main(int argc, char **argv) {
    if (argc > 1) return print_bids(argv[1]);
    pthread_attr_t attr;
    pthread_t thread;
    int result = 1;
    if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, STACK_BYTES) != 0 ||
        pthread_create(&thread, &attr, balance_thread, &result) != 0 || pthread_join(thread, NULL) != 0) {
        fprintf(stderr, "balancer: cannot run the balancer thread\n");
        return 1;
    }
    return result;
}
