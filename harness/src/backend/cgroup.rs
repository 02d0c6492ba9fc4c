//! Linux memory cgroups standing in for VMs: each "VM" is a cgroup whose memory limit is its
//! allocation, and whose miss rate is the rate of major page faults of its processes.
//!
//! Both cgroup versions: v2 (`memory.max`, `memory.stat` `pgmajfault`) where the unified
//! hierarchy has the memory controller, v1 (`memory.limit_in_bytes`, `memory.stat`
//! `total_pgmajfault`) otherwise — this project's machines have v1 only. A node's cgroups
//! live under `<root>/cavmem-<pid>/`; dropping the node kills their processes and removes
//! them, and [`clean_stale`] removes what a crashed run left behind.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long [`CgroupNode::set_limit`] keeps lowering a limit the kernel cannot reach at once.
pub const RESIZE_TIMEOUT: Duration = Duration::from_secs(10);

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
#[derive(Debug)]
pub struct CgroupError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for CgroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for CgroupError {}

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
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("SwapTotal:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kib| kib * 1024)
}

/// A swap file made for a run and removed (swapped off, deleted) on drop.
#[derive(Debug)]
pub struct SwapFile {
    path: PathBuf,
}

impl SwapFile {
    /// Creates a swap file of `bytes` at `path` and turns it on (`fallocate`, `mkswap`,
    /// `swapon`; root is needed).
    ///
    /// # Errors
    /// [`CgroupError`] naming the file and the step that failed; a half-made file is removed.
    pub fn create(path: &Path, bytes: u64) -> Result<Self, CgroupError> {
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

    /// Sets VM `vm`'s memory limit, bytes. Lowering a v1 limit below what the cgroup uses
    /// makes the kernel reclaim (swap out) the difference first, and it gives up with
    /// `EBUSY` when the processes keep touching their pages; the limit is then lowered in
    /// steps, halfway from the usage each time, for up to [`RESIZE_TIMEOUT`] (resizes under
    /// load take 0.3–10 s on this project's machines).
    ///
    /// # Errors
    /// [`CgroupError`] when the kernel refuses the value, or cannot reclaim enough in time.
    pub fn set_limit(&self, vm: usize, bytes: u64) -> Result<(), CgroupError> {
        const EBUSY: i32 = 16;
        let file = self.group(vm)?.join(match self.version {
            CgroupVersion::V1 => "memory.limit_in_bytes",
            CgroupVersion::V2 => "memory.max",
        });
        let deadline = std::time::Instant::now() + RESIZE_TIMEOUT;
        while std::time::Instant::now() < deadline {
            match std::fs::write(&file, bytes.to_string()) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(EBUSY) => {
                    let usage = self.usage_bytes(vm)?;
                    let step = bytes.max(usage / 2 + bytes / 2);
                    let _ = std::fs::write(&file, step.to_string());
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(io_err(&file)(e)),
            }
        }
        Err(CgroupError {
            path: file,
            reason: format!("the kernel could not reclaim down to {bytes} B in time (is there swap?)"),
        })
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
        let text = std::fs::read_to_string(&file).map_err(io_err(&file))?;
        text.trim().parse().map_err(|e| CgroupError {
            path: file,
            reason: format!("not a byte count: {e}"),
        })
    }

    fn stat(&self, vm: usize, key: &str) -> Result<u64, CgroupError> {
        let file = self.group(vm)?.join("memory.stat");
        let text = std::fs::read_to_string(&file).map_err(io_err(&file))?;
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
            .ok_or_else(|| CgroupError {
                path: file,
                reason: format!("no {key} counter"),
            })
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
    /// shell enters the cgroup, then execs the program), so all its memory is charged there.
    ///
    /// # Errors
    /// [`CgroupError`] when the process cannot be started.
    pub fn spawn(&self, vm: usize, program: &str, args: &[&str]) -> Result<std::process::Child, CgroupError> {
        let group = self.group(vm)?;
        std::process::Command::new("sh")
            .args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
            .arg(group)
            .arg(program)
            .args(args)
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
        for pid in procs(group).unwrap_or_default() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The machine's memory controller, or a clear note why the test cannot run here.
    fn controller() -> Option<(PathBuf, CgroupVersion)> {
        match detect(Path::new("/sys/fs/cgroup")) {
            Ok(found) => Some(found),
            Err(e) => {
                assert!(
                    std::env::var_os("CAVMEM_REQUIRE_ALL_TESTS").is_none(),
                    "cgroup tests cannot run here: {e}"
                );
                println!("cgroup tests SKIPPED: {e} (CI runs as root with cgroups)");
                None
            }
        }
    }

    #[test]
    fn cgroup_node_limits_counts_and_cleans_up() {
        let Some((root, version)) = controller() else {
            return;
        };
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
    fn cgroup_squeezed_below_its_working_set_faults_and_stops_when_given_memory() {
        let Some((root, version)) = controller() else {
            return;
        };
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let _swap = match SwapFile::create(&dir.path().join("swap"), 512 << 20) {
            Ok(s) => s,
            Err(e) => {
                assert!(
                    std::env::var_os("CAVMEM_REQUIRE_ALL_TESTS").is_none(),
                    "no swap file here: {e}"
                );
                println!("cgroup fault test SKIPPED: no swap file here: {e}");
                return;
            }
        };
        let node = CgroupNode::create(&root, version, &["vm".to_string()]).unwrap();
        node.set_limit(0, 256 << 20).unwrap();
        // A 96 MiB working set, touched over and over (perl: one of the stand-in workloads).
        let script = "my $s = \"x\" x (96 << 20); while (1) { for (my $i = 0; $i < length($s); $i += 4096) { substr($s, $i, 1) = \"y\"; } }";
        let mut child = node.spawn(0, "perl", &["-e", script]).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let roomy = node.major_faults(0).unwrap();
        node.set_limit(0, 48 << 20).unwrap();
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
    fn cgroup_stale_nodes_of_dead_runs_are_removed() {
        let Some((root, _)) = controller() else { return };
        // A pid that is not running: the largest pid the kernel would not hand out soon.
        let stale = root.join("cavmem-4194000-0");
        std::fs::create_dir(&stale).unwrap();
        std::fs::create_dir(stale.join("vm1")).unwrap();
        let removed = clean_stale(&root);
        assert!(removed.contains(&stale), "{removed:?}");
        assert!(!stale.exists());
    }
}
