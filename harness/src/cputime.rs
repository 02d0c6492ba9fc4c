//! The CPU time of the calling thread, for agent overheads: unlike wall time it does not
//! grow when the machine is loaded and the thread waits for a core.

/// Seconds of CPU the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_s() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cputime_grows_with_work_and_not_with_sleep() {
        let t0 = thread_cpu_s();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let slept = thread_cpu_s() - t0;
        let (t1, wall) = (thread_cpu_s(), std::time::Instant::now());
        let mut x = 0u64;
        while wall.elapsed().as_millis() < 30 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        let busy = thread_cpu_s() - t1;
        assert!(slept < 0.02, "50 ms of sleep took {slept} s of CPU");
        assert!(
            busy > 0.0 && busy <= wall.elapsed().as_secs_f64() + 0.01,
            "30 ms of work: {busy} s of CPU"
        );
    }
}
