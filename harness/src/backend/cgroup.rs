//! Linux memory cgroups standing in for VMs: each "VM" is a cgroup whose memory limit is its
//! allocation, and whose miss rate is the rate of major page faults of its processes.
//!
//! Both cgroup versions: v2 (`memory.max`, `memory.stat` `pgmajfault`) where the unified
//! hierarchy has the memory controller, v1 (`memory.limit_in_bytes`, `memory.stat`
//! `total_pgmajfault`) otherwise — this project's machines have v1 only. A node's cgroups
//! live under `<root>/cavmem-<pid>/`; dropping the node kills their processes and removes
//! them, and [`clean_stale`] removes what a crashed run left behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long [`CgroupNode::set_limit`] keeps lowering a limit the kernel cannot reach at once.
pub const RESIZE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`CgroupNode::set_limit`] lowers a limit in steps before it pauses the
/// workload to finish.
pub const RESIZE_STEPPING: Duration = Duration::from_secs(2);

/// Processes stopped (`SIGSTOP`) while a limit is lowered; resumed (`SIGCONT`) on drop.
#[derive(Debug)]
struct Paused(Vec<u32>);

impl Paused {
    fn new(pids: Vec<u32>) -> Self {
        signal("-STOP", &pids);
        Self(pids)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal("-CONT", &self.0);
    }
}

/// Sends `signal` (`-STOP`, `-CONT`, `-KILL`) to `pids` with kill(1), best effort.
fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = std::process::Command::new("kill")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stderr(std::process::Stdio::null())
        .status();
}

/// Nodes created by this process so far (each gets its own directory).
static NODES: AtomicU32 = AtomicU32::new(0);

/// Which cgroup interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The legacy memory controller (`/sys/fs/cgroup/memory`).
    V1,
    /// The unified hierarchy (`/sys/fs/cgroup` with `memory` in `cgroup.controllers`).
    V2,
}

/// A failure of the cgroup backend, with the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct CgroupError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |e| CgroupError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The memory controller's mount point and version on this machine, if it is usable.
///
/// # Errors
/// [`CgroupError`] naming what is missing: no memory controller, or not writable (root is
/// needed).
pub fn detect(sys_fs_cgroup: &Path) -> Result<(PathBuf, CgroupVersion), CgroupError> {
    let v1 = sys_fs_cgroup.join("memory");
    let controllers = sys_fs_cgroup.join("cgroup.controllers");
    let (root, version) =
        if std::fs::read_to_string(&controllers).is_ok_and(|c| c.split_whitespace().any(|w| w == "memory")) {
            (sys_fs_cgroup.to_path_buf(), CgroupVersion::V2)
        } else if v1.join("memory.limit_in_bytes").is_file() {
            (v1, CgroupVersion::V1)
        } else {
            return Err(CgroupError {
                path: sys_fs_cgroup.to_path_buf(),
                reason: "no cgroup memory controller (neither v2 with `memory` nor v1 `memory/`)".into(),
            });
        };
    let n = NODES.fetch_add(1, Ordering::Relaxed);
    let probe = root.join(format!("cavmem-probe-{}-{n}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| CgroupError {
        path: root.clone(),
        reason: format!("cannot create a cgroup here ({e}); it takes root"),
    })?;
    let _ = std::fs::remove_dir(&probe);
    Ok((root, version))
}

/// Swap space in use on this machine, bytes (`SwapTotal` in `/proc/meminfo`). Without swap a
/// cgroup over its limit has its processes killed instead of faulting pages back in.
pub fn swap_total_bytes() -> u64 {
    meminfo_bytes("SwapTotal").unwrap_or(0)
}

/// A field of `/proc/meminfo` (given in kB there), bytes; `None` when the file or the field
/// is missing.
pub fn meminfo_bytes(field: &str) -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo.lines().find_map(|l| {
        let kib: u64 = l
            .strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    })
}

/// A swap file made for a run and removed (swapped off, deleted) on drop.
#[derive(Debug)]
pub struct SwapFile {
    path: PathBuf,
}

impl SwapFile {
    /// Creates a swap file of `bytes` at `path` and turns it on (`fallocate`, `mkswap`,
    /// `swapon`; root is needed). A file already there (left by a run that crashed) is
    /// swapped off and replaced.
    ///
    /// # Errors
    /// [`CgroupError`] naming the file and the step that failed; a half-made file is removed.
    pub fn create(path: &Path, bytes: u64) -> Result<Self, CgroupError> {
        if path.exists() {
            let _ = std::process::Command::new("swapoff")
                .arg(path)
                .stderr(std::process::Stdio::null())
                .status();
            std::fs::remove_file(path).map_err(io_err(path))?;
        }
        let file = Self {
            path: path.to_path_buf(),
        };
        let run = |program: &str, args: &[&str]| -> Result<(), CgroupError> {
            let out = std::process::Command::new(program)
                .args(args)
                .arg(path)
                .output()
                .map_err(|e| CgroupError {
                    path: path.to_path_buf(),
                    reason: format!("{program}: {e}"),
                })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(CgroupError {
                    path: path.to_path_buf(),
                    reason: format!("{program}: {}", String::from_utf8_lossy(&out.stderr).trim()),
                })
            }
        };
        run("fallocate", &["-l", &bytes.to_string()])?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(io_err(path))?;
        run("mkswap", &["-q"])?;
        run("swapon", &[])?;
        Ok(file)
    }
}

impl Drop for SwapFile {
    fn drop(&mut self) {
        let _ = std::process::Command::new("swapoff").arg(&self.path).status();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A node of cgroups, one per VM, removed on drop.
#[derive(Debug)]
pub struct CgroupNode {
    dir: PathBuf,
    version: CgroupVersion,
    groups: Vec<PathBuf>,
}

impl CgroupNode {
    /// Creates `<root>/cavmem-<pid>-<n>/<name>` for each VM name.
    ///
    /// # Errors
    /// [`CgroupError`] naming the directory that could not be created; what was created is
    /// removed again.
    pub fn create(root: &Path, version: CgroupVersion, names: &[String]) -> Result<Self, CgroupError> {
        let n = NODES.fetch_add(1, Ordering::Relaxed);
        let dir = root.join(format!("cavmem-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).map_err(io_err(&dir))?;
        let mut node = Self {
            dir,
            version,
            groups: Vec::new(),
        };
        if version == CgroupVersion::V2 {
            // Children need the memory controller enabled in their parent.
            let control = node.dir.join("cgroup.subtree_control");
            std::fs::write(&control, "+memory").map_err(io_err(&control))?;
        }
        for name in names {
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(CgroupError {
                    path: node.dir.clone(),
                    reason: format!("{name:?} is not a usable cgroup name"),
                });
            }
            let group = node.dir.join(name);
            std::fs::create_dir(&group).map_err(io_err(&group))?;
            if version == CgroupVersion::V1 {
                // A process moved in brings its memory along (v2 always charges the new group).
                let immigrate = group.join("memory.move_charge_at_immigrate");
                let _ = std::fs::write(&immigrate, "3");
            }
            node.groups.push(group);
        }
        Ok(node)
    }

    /// The node's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cgroup of VM `vm`.
    ///
    /// # Errors
    /// [`CgroupError`] for an index out of range.
    pub fn group(&self, vm: usize) -> Result<&Path, CgroupError> {
        self.groups
            .get(vm)
            .map(PathBuf::as_path)
            .ok_or_else(|| CgroupError {
                path: self.dir.clone(),
                reason: format!("no VM {vm} (the node has {})", self.groups.len()),
            })
    }

    /// Sets VM `vm`'s memory limit, bytes; returns the limit in effect afterwards. Lowering
    /// a v1 limit below what the cgroup uses makes the kernel reclaim (swap out) the
    /// difference first, and it gives up with `EBUSY` when the processes keep touching
    /// their pages. The limit is then lowered in steps, halfway from the usage each time,
    /// for up to [`RESIZE_STEPPING`]; if the workload still resists, its processes are
    /// paused (`SIGSTOP`) while the kernel swaps out the rest and resumed (`SIGCONT`) right
    /// after, for up to [`RESIZE_TIMEOUT`] in all. If the time runs out, the last step
    /// reached stays in effect and is returned: more than `bytes`, never more than before.
    ///
    /// # Errors
    /// [`CgroupError`] when the kernel refuses the value or the files cannot be used.
    pub fn set_limit(&self, vm: usize, bytes: u64) -> Result<u64, CgroupError> {
        const EBUSY: i32 = 16;
        let file = self.limit_file(vm)?;
        let mut in_effect = self.limit_bytes(vm)?;
        let started = std::time::Instant::now();
        let mut paused: Option<Paused> = None;
        while started.elapsed() < RESIZE_TIMEOUT {
            match std::fs::write(&file, bytes.to_string()) {
                Ok(()) => return Ok(bytes),
                Err(e) if e.raw_os_error() == Some(EBUSY) => {
                    let usage = self.usage_bytes(vm)?;
                    let step = bytes.max(usage / 2 + bytes / 2);
                    if step < in_effect && std::fs::write(&file, step.to_string()).is_ok() {
                        in_effect = step;
                    }
                    if paused.is_none() && started.elapsed() >= RESIZE_STEPPING {
                        paused = Some(Paused::new(self.processes(vm)?));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(io_err(&file)(e)),
            }
        }
        drop(paused);
        self.limit_bytes(vm)
    }

    /// VM `vm`'s memory limit in effect, bytes (a very large number when unlimited).
    ///
    /// # Errors
    /// [`CgroupError`] when the file cannot be read.
    pub fn limit_bytes(&self, vm: usize) -> Result<u64, CgroupError> {
        read_bytes(self.limit_file(vm)?)
    }

    fn limit_file(&self, vm: usize) -> Result<PathBuf, CgroupError> {
        Ok(self.group(vm)?.join(match self.version {
            CgroupVersion::V1 => "memory.limit_in_bytes",
            CgroupVersion::V2 => "memory.max",
        }))
    }

    /// Major page faults of VM `vm`'s processes since its cgroup was created.
    ///
    /// # Errors
    /// [`CgroupError`] when `memory.stat` cannot be read or lacks the counter.
    pub fn major_faults(&self, vm: usize) -> Result<u64, CgroupError> {
        let key = match self.version {
            CgroupVersion::V1 => "total_pgmajfault",
            CgroupVersion::V2 => "pgmajfault",
        };
        self.stat(vm, key)
    }

    /// Memory charged to VM `vm` now, bytes.
    ///
    /// # Errors
    /// [`CgroupError`] when the usage file cannot be read.
    pub fn usage_bytes(&self, vm: usize) -> Result<u64, CgroupError> {
        let file = self.group(vm)?.join(match self.version {
            CgroupVersion::V1 => "memory.usage_in_bytes",
            CgroupVersion::V2 => "memory.current",
        });
        read_bytes(file)
    }

    /// The most memory charged to VM `vm` since its cgroup was created or
    /// [`CgroupNode::reset_peak`] was last called, bytes (v1 `memory.max_usage_in_bytes`,
    /// v2 `memory.peak`).
    ///
    /// # Errors
    /// [`CgroupError`] when the file cannot be read (v2 kernels before 5.19 lack it).
    pub fn peak_usage_bytes(&self, vm: usize) -> Result<u64, CgroupError> {
        let file = self.group(vm)?.join(match self.version {
            CgroupVersion::V1 => "memory.max_usage_in_bytes",
            CgroupVersion::V2 => "memory.peak",
        });
        read_bytes(file)
    }

    /// Starts a new peak for [`CgroupNode::peak_usage_bytes`] (v1; v2's peak cannot be
    /// reset by older kernels, and this does nothing there).
    ///
    /// # Errors
    /// [`CgroupError`] when the kernel refuses.
    pub fn reset_peak(&self, vm: usize) -> Result<(), CgroupError> {
        if self.version == CgroupVersion::V1 {
            let file = self.group(vm)?.join("memory.max_usage_in_bytes");
            std::fs::write(&file, "0").map_err(io_err(&file))?;
        }
        Ok(())
    }

    /// Processes of VM `vm` the kernel's OOM killer has killed since its cgroup was
    /// created (v1 `oom_kill` in `memory.oom_control`, v2 `oom_kill` in `memory.events`).
    ///
    /// # Errors
    /// [`CgroupError`] when the file cannot be read or lacks the counter (v1 kernels
    /// before 4.13).
    pub fn oom_kills(&self, vm: usize) -> Result<u64, CgroupError> {
        let file = match self.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        };
        self.counter(vm, file, "oom_kill")
    }

    /// Kills every process in VM `vm`'s cgroup (best effort; a workload's grandchildren,
    /// such as the compilers a shell loop starts, included).
    pub fn kill_all(&self, vm: usize) {
        if let Ok(pids) = self.processes(vm) {
            signal("-KILL", &pids);
        }
    }

    fn stat(&self, vm: usize, key: &str) -> Result<u64, CgroupError> {
        self.counter(vm, "memory.stat", key)
    }

    /// The counter `key` of a cgroup file of `key value` lines.
    fn counter(&self, vm: usize, file: &str, key: &str) -> Result<u64, CgroupError> {
        let file = self.group(vm)?.join(file);
        let text = std::fs::read_to_string(&file).map_err(io_err(&file))?;
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
            .ok_or_else(|| CgroupError {
                path: file,
                reason: format!("no {key} counter"),
            })
    }

    /// User CPU time of VM `vm`'s processes and of the children they have reaped, seconds
    /// (`utime + cutime` of each process in `/proc/<pid>/stat`, in the kernel's 100 Hz
    /// ticks). A workload whose root process stays alive (a shell looping over compiles)
    /// thus counts its finished children too. Its rate is the workload's progress: time
    /// stalled on faults is not user time.
    ///
    /// # Errors
    /// [`CgroupError`] when `cgroup.procs` cannot be read.
    pub fn user_cpu_s(&self, vm: usize) -> Result<f64, CgroupError> {
        /// `USER_HZ`: the unit of `/proc/<pid>/stat` times on Linux.
        const TICKS_PER_S: f64 = 100.0;
        let ticks: u64 = self
            .processes(vm)?
            .into_iter()
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // Fields after the command's closing parenthesis start at field 3.
                let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                let utime: u64 = rest.get(11)?.parse().ok()?;
                let cutime: u64 = rest.get(13)?.parse().ok()?;
                Some(utime + cutime)
            })
            .sum();
        Ok(ticks as f64 / TICKS_PER_S)
    }

    /// Moves process `pid` (and its future children) into VM `vm`'s cgroup.
    ///
    /// # Errors
    /// [`CgroupError`] when the kernel refuses (no such process).
    pub fn add_process(&self, vm: usize, pid: u32) -> Result<(), CgroupError> {
        let file = self.group(vm)?.join("cgroup.procs");
        std::fs::write(&file, pid.to_string()).map_err(io_err(&file))
    }

    /// Starts `program` with `args` inside VM `vm`'s cgroup from its first instruction (a
    /// shell enters the cgroup, then execs the program), so all its memory is charged there;
    /// its standard output goes to `stdout` (e.g. a pipe to read its progress from).
    ///
    /// # Errors
    /// [`CgroupError`] when the process cannot be started.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(
        &self,
        vm: usize,
        program: &str,
        args: &[S],
        stdout: std::process::Stdio,
    ) -> Result<std::process::Child, CgroupError> {
        let group = self.group(vm)?;
        std::process::Command::new("sh")
            .args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
            .arg(group)
            .arg(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .spawn()
            .map_err(|e| CgroupError {
                path: group.to_path_buf(),
                reason: format!("cannot start {program}: {e}"),
            })
    }

    /// The processes in VM `vm`'s cgroup.
    ///
    /// # Errors
    /// [`CgroupError`] when `cgroup.procs` cannot be read.
    pub fn processes(&self, vm: usize) -> Result<Vec<u32>, CgroupError> {
        procs(self.group(vm)?)
    }
}

impl Drop for CgroupNode {
    fn drop(&mut self) {
        remove_node_dir(&self.dir);
    }
}

/// A cgroup file holding a byte count (`max`, v2's "no limit", reads as `u64::MAX`).
fn read_bytes(file: PathBuf) -> Result<u64, CgroupError> {
    let text = std::fs::read_to_string(&file).map_err(io_err(&file))?;
    match text.trim() {
        "max" => Ok(u64::MAX),
        t => t.parse().map_err(|e| CgroupError {
            path: file,
            reason: format!("not a byte count: {e}"),
        }),
    }
}

fn procs(group: &Path) -> Result<Vec<u32>, CgroupError> {
    let file = group.join("cgroup.procs");
    let text = std::fs::read_to_string(&file).map_err(io_err(&file))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Kills every process in the node's cgroups and removes them (best effort, with a few
/// retries while the kernel reaps the processes).
fn remove_node_dir(dir: &Path) {
    let groups: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    for group in &groups {
        signal("-KILL", &procs(group).unwrap_or_default());
    }
    for _ in 0..50 {
        let mut left = false;
        for group in &groups {
            if group.exists() && std::fs::remove_dir(group).is_err() {
                left = true;
            }
        }
        if !left && std::fs::remove_dir(dir).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the nodes of runs that are no longer alive (`<root>/cavmem-<pid>-<n>` whose
/// process has exited): what a crashed run left. Returns the directories removed.
pub fn clean_stale(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("cavmem-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            remove_node_dir(&path);
            if !path.exists() {
                removed.push(path);
            }
        }
    }
    removed
}

/// What the tests that need root, cgroups and swap share.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// The machine's memory controller. A test that needs it runs only when asked for
    /// (`--include-ignored`) and then fails here with the reason if there is none.
    pub(crate) fn controller() -> (PathBuf, CgroupVersion) {
        match detect(Path::new("/sys/fs/cgroup")) {
            Ok(found) => found,
            Err(e) => panic!("this test needs root and a cgroup memory controller: {e}"),
        }
    }

    /// Held by each test that squeezes workloads: they share the swap device, and one
    /// reclaiming slows the others' limit changes past their timeouts.
    pub(crate) fn exclusive() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A 512 MiB swap file in `dir` for the test; fails with the reason where there can be
    /// none (root and a file system that takes swap files).
    pub(crate) fn swap(dir: &Path) -> SwapFile {
        match SwapFile::create(&dir.join("swap"), 512 << 20) {
            Ok(s) => s,
            Err(e) => panic!("this test needs a swap file (root): {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::{controller, swap};
    use super::*;

    /// Every Linux has these two fields; a field that is only a prefix of another is not
    /// matched, and a missing one is `None`.
    #[test]
    fn cgroup_meminfo_fields_read_in_bytes() {
        let total = meminfo_bytes("MemTotal").unwrap();
        assert!(total > 64 << 20 && total.is_multiple_of(1024), "{total}");
        assert!(meminfo_bytes("MemAvailable").unwrap() <= total);
        assert_eq!(meminfo_bytes("Mem"), None);
        assert_eq!(meminfo_bytes("NoSuchField"), None);
    }

    #[test]
    #[ignore = "needs root and a cgroup memory controller (CI runs it)"]
    fn cgroup_node_limits_counts_and_cleans_up() {
        let (root, version) = controller();
        let names = vec!["vm1".to_string(), "vm2".to_string()];
        let node = CgroupNode::create(&root, version, &names).unwrap();
        let dir = node.dir().to_path_buf();
        node.set_limit(0, 64 << 20).unwrap();
        node.set_limit(1, 128 << 20).unwrap();
        let limit = std::fs::read_to_string(node.group(0).unwrap().join(match version {
            CgroupVersion::V1 => "memory.limit_in_bytes",
            CgroupVersion::V2 => "memory.max",
        }))
        .unwrap();
        assert_eq!(limit.trim(), (64u64 << 20).to_string());
        assert_eq!(node.major_faults(0).unwrap(), 0, "a new cgroup has no faults");
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        node.add_process(1, child.id()).unwrap();
        assert_eq!(node.processes(1).unwrap(), vec![child.id()]);
        assert!(node.group(2).is_err());
        drop(node);
        assert!(!dir.exists(), "the node's cgroups are removed");
        assert!(!child.wait().unwrap().success(), "and their processes killed");
    }

    #[test]
    #[ignore = "needs root, a cgroup memory controller and a swap file (CI runs it)"]
    fn cgroup_squeezed_below_its_working_set_faults_and_stops_when_given_memory() {
        let (root, version) = controller();
        let _one_at_a_time = super::tests_support::exclusive();
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let _swap = swap(dir.path());
        let node = CgroupNode::create(&root, version, &["vm".to_string()]).unwrap();
        node.set_limit(0, 256 << 20).unwrap();
        // A 96 MiB working set, touched over and over (perl: one of the stand-in workloads).
        let script = "my $s = \"x\" x (96 << 20); while (1) { for (my $i = 0; $i < length($s); $i += 4096) { substr($s, $i, 1) = \"y\"; } }";
        let mut child = node
            .spawn(0, "perl", &["-e", script], std::process::Stdio::null())
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let roomy = node.major_faults(0).unwrap();
        let squeezed_to = node.set_limit(0, 48 << 20).unwrap();
        assert!(
            squeezed_to < 96 << 20,
            "the limit went below the working set: {squeezed_to}"
        );
        std::thread::sleep(Duration::from_millis(1500));
        let squeezed = node.major_faults(0).unwrap();
        node.set_limit(0, 256 << 20).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let before = node.major_faults(0).unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        let relieved = node.major_faults(0).unwrap() - before;
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            squeezed > roomy + 100,
            "squeezed below its working set it faults: {roomy} → {squeezed}"
        );
        assert!(
            relieved * 10 < squeezed - roomy,
            "given memory back, it stops: {relieved} in 1 s"
        );
    }

    #[test]
    #[ignore = "needs root and a cgroup memory controller (CI runs it)"]
    fn cgroup_stale_nodes_of_dead_runs_are_removed() {
        let (root, _) = controller();
        // A pid that is not running: the largest pid the kernel would not hand out soon.
        let stale = root.join("cavmem-4194000-0");
        std::fs::create_dir(&stale).unwrap();
        std::fs::create_dir(stale.join("vm1")).unwrap();
        let removed = clean_stale(&root);
        assert!(removed.contains(&stale), "{removed:?}");
        assert!(!stale.exists());
    }
}
