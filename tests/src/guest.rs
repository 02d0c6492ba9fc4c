//! Real guests for the QMP tests, built at test time from Debian packages only: the kernel
//! of `linux-image-amd64`'s current image package (fetched with `apt-get download`,
//! unpacked with `dpkg-deb`, not installed), its virtio modules, `busybox-static`, and a
//! static workload program that touches a chosen working set. The initramfs loads the
//! modules in the order their own `depends=` give ([`crate::kmod`]), checks that the
//! balloon driver is bound and turns on swap on a virtio disk, and only then runs the
//! workload; QEMU runs the guest under software emulation (`-accel tcg`) unless the CPU
//! really offers vmx/svm.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::kmod::ModuleTree;

/// The modules the guest needs (their dependencies come along): the PCI transport, the
/// balloon and the swap disk.
pub const MODULES: [&str; 3] = ["virtio_pci", "virtio_balloon", "virtio_blk"];

/// What the console shows once the workload runs: the modules loaded, the balloon driver
/// bound, swap on.
const READY: &str = "cavmem guest ready";
/// What the console shows when the set-up failed (the reason follows it).
const FAILED: &str = "cavmem guest failed";

/// The guest's workload: touches `argv[1]` MiB, one write per page, forever.
const TOUCH_C: &str = r#"#include <stdlib.h>
int main(int argc, char **argv) {
    size_t n = (argc > 1 ? strtoul(argv[1], 0, 10) : 64) << 20;
    volatile char *p = malloc(n);
    if (!p) return 1;
    for (;;) for (size_t i = 0; i < n; i += 4096) p[i]++;
}
"#;

/// The initramfs's /init: a failed step prints [`FAILED`] and its reason, then idles (init
/// must not exit).
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
fail() {
    echo "cavmem guest failed: $*; virtio devices: $(ls /sys/bus/virtio/devices | tr '\n' ' ')"
    while :; do sleep 3600; done
}
bound() { ls "/sys/bus/virtio/drivers/$1" 2>/dev/null | grep -q '^virtio[0-9]'; }
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m" || fail "insmod $m"; done
i=0
until bound virtio_balloon && [ -b /dev/vda ] || [ $i -ge 50 ]; do i=$((i + 1)); sleep 0.1; done
bound virtio_balloon || fail "the virtio_balloon driver is bound to no device"
[ -b /dev/vda ] || fail "no swap disk /dev/vda (virtio_blk)"
mkswap /dev/vda >/dev/null || fail "mkswap /dev/vda"
swapon /dev/vda || fail "swapon /dev/vda"
grep -q '^/dev/vda ' /proc/swaps || fail "/dev/vda is not in /proc/swaps"
ws=$(sed -n 's/.*cavmem_ws=\([0-9]*\).*/\1/p' /proc/cmdline)
echo "cavmem guest ready ws=${ws:-64}"
exec /bin/touch ${ws:-64}
"#;

/// Runs QEMU (`$5…`) for the test process `$1`; on TERM/INT, or when the test process or
/// QEMU is gone, kills QEMU and removes the guest's files (`$2 $3 $4`); in the latter
/// cases it also says on stderr how QEMU ended and exits with QEMU's status.
const WATCHDOG: &str = r#"parent=$1; files="$2 $3 $4"; shift 4
"$@" &
q=$!
trap 'kill $q 2>/dev/null; wait $q; rm -f $files; exit 0' TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 "$q" 2>/dev/null; do sleep 0.5; done
kill $q 2>/dev/null; wait $q; status=$?; rm -f $files
echo "watchdog: qemu-system-x86_64 ended with status $status" >&2; exit $status
"#;

/// A kernel and an initramfs, ready to boot.
#[derive(Clone, Debug)]
pub struct GuestKit {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs (uncompressed newc cpio).
    pub initrd: PathBuf,
    /// The kernel modules the initramfs loads, in order (in the unpacked kernel package).
    pub modules: Vec<PathBuf>,
    /// `kvm` where the CPU offers vmx/svm and /dev/kvm exists, else `tcg`.
    pub accel: &'static str,
}

fn run(cmd: &mut Command, what: &str) -> Result<std::process::Output, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl GuestKit {
    /// Builds the kit in `cache` (kept between runs; the kernel is fetched once).
    ///
    /// # Errors
    /// What is missing (qemu-system-x86, busybox-static, gcc, apt) or failed.
    pub fn prepare(cache: &Path) -> Result<Self, String> {
        Self::prepare_without(cache, &[])
    }

    /// As [`GuestKit::prepare`], with the modules of [`MODULES`] named in `left_out` not
    /// loaded: a guest that cannot finish its set-up, to test that it says so.
    ///
    /// # Errors
    /// As [`GuestKit::prepare`].
    pub fn prepare_without(cache: &Path, left_out: &[&str]) -> Result<Self, String> {
        check_tools()?;
        std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        let unpacked = cache.join("kernel");
        if !unpacked.join("boot").is_dir() {
            fetch_kernel(cache, &unpacked)?;
        }
        let (kernel, version) = find_kernel(&unpacked)?;
        let wanted: Vec<&str> = MODULES.into_iter().filter(|m| !left_out.contains(m)).collect();
        let modules = ModuleTree::scan(&unpacked.join("lib/modules").join(&version))?.load_order(&wanted)?;
        let mut files: Vec<(String, u32, Vec<u8>)> = vec![
            ("bin/busybox".into(), 0o100_755, read(&busybox()?)?),
            ("bin/touch".into(), 0o100_755, read(&build_touch(cache)?)?),
            ("init".into(), 0o100_755, INIT.as_bytes().to_vec()),
        ];
        let mut order = Vec::new();
        for path in &modules {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            files.push((format!("lib/modules/{name}"), 0o100_644, read(path)?));
            order.push(name);
        }
        files.push((
            "lib/modules/order".into(),
            0o100_644,
            (order.join("\n") + "\n").into_bytes(),
        ));
        let initrd = match left_out {
            [] => cache.join("initrd.cpio"),
            _ => cache.join(format!("initrd-without-{}.cpio", left_out.join("-"))),
        };
        let dirs = ["bin", "lib", "lib/modules", "proc", "sys", "dev"];
        std::fs::write(&initrd, newc(&dirs, &files)).map_err(|e| format!("{}: {e}", initrd.display()))?;
        Ok(Self {
            kernel,
            initrd,
            modules,
            accel: accel(),
        })
    }
}

/// Fails with the package to install for the first tool missing.
fn check_tools() -> Result<(), String> {
    for (tool, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("dpkg-deb", "dpkg"),
        ("apt-get", "apt"),
        ("gcc", "gcc"),
    ] {
        run(
            Command::new("sh").args(["-c", &format!("command -v {tool}")]),
            tool,
        )
        .map_err(|_| format!("{tool} not found (apt-get install {package})"))?;
    }
    Ok(())
}

/// Downloads `linux-image-amd64`'s current image package into `cache` and unpacks it to
/// `unpacked`.
fn fetch_kernel(cache: &Path, unpacked: &Path) -> Result<(), String> {
    let depends = run(
        Command::new("apt-cache").args(["depends", "linux-image-amd64"]),
        "apt-cache depends linux-image-amd64",
    )?;
    let text = String::from_utf8_lossy(&depends.stdout);
    let package = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Depends: ")
                .filter(|p| p.starts_with("linux-image-"))
        })
        .ok_or("linux-image-amd64 names no image package (apt-get update?)")?
        .to_string();
    run(
        Command::new("apt-get")
            .args(["download", "-q", &package])
            .current_dir(cache),
        "apt-get download",
    )?;
    let deb = std::fs::read_dir(cache)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(unpacked),
        "dpkg-deb -x",
    )?;
    let _ = std::fs::remove_file(&deb);
    Ok(())
}

/// The unpacked package's kernel image and its version.
fn find_kernel(unpacked: &Path) -> Result<(PathBuf, String), String> {
    let kernel = std::fs::read_dir(unpacked.join("boot"))
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or("no vmlinuz in the kernel package")?;
    let version = kernel
        .file_name()
        .map(|n| n.to_string_lossy().trim_start_matches("vmlinuz-").to_string())
        .unwrap_or_default();
    Ok((kernel, version))
}

/// Compiles the workload (static, so the initramfs needs no libc).
fn build_touch(cache: &Path) -> Result<PathBuf, String> {
    let touch = cache.join("touch");
    let source = cache.join("touch.c");
    std::fs::write(&source, TOUCH_C).map_err(|e| e.to_string())?;
    run(
        Command::new("gcc")
            .args(["-O2", "-static", "-o"])
            .arg(&touch)
            .arg(&source),
        "gcc -static (libc6-dev)",
    )?;
    Ok(touch)
}

fn busybox() -> Result<PathBuf, String> {
    let busybox = run(Command::new("sh").args(["-c", "command -v busybox"]), "busybox")?;
    Ok(PathBuf::from(String::from_utf8_lossy(&busybox.stdout).trim()))
}

/// `kvm` where the CPU offers vmx/svm and /dev/kvm exists, else `tcg`.
fn accel() -> &'static str {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let virt = cpu
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    if virt && Path::new("/dev/kvm").exists() {
        "kvm"
    } else {
        "tcg"
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// An uncompressed `newc` cpio archive of `dirs` and `files` (path, mode, bytes).
pub fn newc(dirs: &[&str], files: &[(String, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ino = 1u32;
    let mut entry = |out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]| {
        let fields = [
            ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        ino += 1;
        out.extend_from_slice(b"070701");
        for f in fields {
            let _ = write!(out, "{f:08x}");
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    };
    for d in dirs {
        entry(&mut out, d, 0o040_755, &[]);
    }
    for (name, mode, data) in files {
        entry(&mut out, name, *mode, data);
    }
    entry(&mut out, "TRAILER!!!", 0, &[]);
    out
}

/// A running guest; killed and its files removed on drop.
#[derive(Debug)]
pub struct Guest {
    child: Child,
    /// Its QMP socket.
    pub socket: PathBuf,
    console: PathBuf,
    swap: PathBuf,
    name: String,
}

impl Guest {
    /// Boots a guest of `memory_mib` in `dir` whose workload touches `working_set_mib`, with
    /// a 512 MiB swap disk, and waits until the workload runs.
    ///
    /// # Errors
    /// As [`Guest::spawn`] and [`Guest::wait_ready`].
    pub fn start(
        kit: &GuestKit,
        dir: &Path,
        name: &str,
        memory_mib: u32,
        working_set_mib: u32,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut guest = Self::spawn(kit, dir, name, memory_mib, working_set_mib)?;
        guest.wait_ready(timeout)?;
        Ok(guest)
    }

    /// Starts QEMU for a guest (see [`Guest::start`]) without waiting for it.
    ///
    /// # Errors
    /// The swap disk or QEMU failing to start.
    pub fn spawn(
        kit: &GuestKit,
        dir: &Path,
        name: &str,
        memory_mib: u32,
        working_set_mib: u32,
    ) -> Result<Self, String> {
        let socket = dir.join(format!("{name}.qmp"));
        let console = dir.join(format!("{name}.console"));
        let swap = dir.join(format!("{name}.swap"));
        std::fs::File::create(&swap)
            .and_then(|f| f.set_len(512 << 20))
            .map_err(|e| format!("{}: {e}", swap.display()))?;
        // A watchdog shell runs QEMU: it kills QEMU and removes the guest's files when told
        // to (drop) or when this process is gone (Ctrl-C, a crash).
        let child = Command::new("sh")
            .args(["-c", WATCHDOG, "sh", &std::process::id().to_string()])
            .args([&console, &swap, &socket])
            .arg("qemu-system-x86_64")
            .args([
                "-accel",
                kit.accel,
                "-m",
                &memory_mib.to_string(),
                "-smp",
                "1",
                "-kernel",
            ])
            .arg(&kit.kernel)
            .arg("-initrd")
            .arg(&kit.initrd)
            .args([
                "-append",
                &format!("console=ttyS0 quiet cavmem_ws={working_set_mib}"),
            ])
            .args(["-display", "none", "-monitor", "none", "-serial"])
            .arg(format!("file:{}", console.display()))
            .args(["-device", "virtio-balloon-pci,id=balloon0", "-drive"])
            .arg(format!("file={},if=virtio,format=raw", swap.display()))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("qemu-system-x86_64: {e}"))?;
        Ok(Self {
            child,
            socket,
            console,
            swap,
            name: name.to_string(),
        })
    }

    /// Waits until the guest's workload runs: its modules loaded, the balloon driver
    /// bound, swap on.
    ///
    /// # Errors
    /// The guest's set-up failing (at once), QEMU exiting, or the guest not ready within
    /// `timeout`; each with the console quoted.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.console).unwrap_or_default();
            if text.contains(READY) {
                return Ok(());
            }
            if text.contains(FAILED) {
                return Err(format!(
                    "{}: the guest's set-up failed; console:\n{text}",
                    self.name
                ));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!(
                    "{}: QEMU exited ({status}): {}; console:\n{text}",
                    self.name,
                    err.trim()
                ));
            }
            if Instant::now() > end {
                return Err(format!(
                    "{}: not ready after {} s; console:\n{text}",
                    self.name,
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the guest now (QEMU killed, its files removed), as if its host process went
    /// away.
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill();
        for f in [&self.socket, &self.console, &self.swap] {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_init_prints_what_wait_ready_looks_for() {
        assert!(INIT.contains(&format!("echo \"{READY} ws=")));
        assert!(INIT.contains(&format!("echo \"{FAILED}: $*")));
        for check in [
            "bound virtio_balloon ||",
            "[ -b /dev/vda ] ||",
            "swapon /dev/vda ||",
        ] {
            assert!(INIT.contains(check), "{check}");
        }
    }
}
