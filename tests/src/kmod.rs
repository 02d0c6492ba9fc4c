//! Linux kernel modules of an unpacked kernel package, and the order to load them in: each
//! module's `depends=` comes from its own `.modinfo` ELF section (what `modinfo` prints),
//! so the order follows whatever kernel the package holds, with no `depmod` run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use object::{Object as _, ObjectSection as _};

/// A module's name as the kernel knows it: `-` and `_` are the same to it.
pub fn module_name(file_stem: &str) -> String {
    file_stem.replace('-', "_")
}

/// The `key=value` entries of a module's `.modinfo` section.
///
/// # Errors
/// `elf` is no ELF object or has no `.modinfo` section.
pub fn modinfo(elf: &[u8]) -> Result<Vec<(String, String)>, String> {
    let file = object::File::parse(elf).map_err(|e| format!("not an ELF object: {e}"))?;
    let section = file.section_by_name(".modinfo").ok_or("no .modinfo section")?;
    let data = section.data().map_err(|e| format!(".modinfo: {e}"))?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (key, value) = entry.split_once('=')?;
            Some((key.to_string(), value.to_string()))
        })
        .collect())
}

/// The modules a module needs loaded first (its `depends=`, empty when it needs none).
///
/// # Errors
/// As [`modinfo`].
pub fn depends(elf: &[u8]) -> Result<Vec<String>, String> {
    Ok(modinfo(elf)?
        .into_iter()
        .filter(|(key, _)| key == "depends")
        .flat_map(|(_, value)| {
            value
                .split(',')
                .filter(|d| !d.is_empty())
                .map(module_name)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// `wanted` and everything they need, each once, every module after the modules it
/// depends on. `depends_of(name)` gives a module's dependencies, or `None` for a module
/// built into the kernel (nothing to load).
///
/// # Errors
/// What `depends_of` reports, or a dependency cycle (named).
pub fn dependency_order<F>(wanted: &[&str], mut depends_of: F) -> Result<Vec<String>, String>
where
    F: FnMut(&str) -> Result<Option<Vec<String>>, String>,
{
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    for name in wanted {
        visit(
            &module_name(name),
            &mut depends_of,
            &mut Vec::new(),
            &mut done,
            &mut order,
        )?;
    }
    Ok(order)
}

/// Depth-first: a module is placed once all it depends on are; `path` detects cycles.
fn visit<F>(
    name: &str,
    depends_of: &mut F,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
    order: &mut Vec<String>,
) -> Result<(), String>
where
    F: FnMut(&str) -> Result<Option<Vec<String>>, String>,
{
    if done.contains(name) {
        return Ok(());
    }
    if path.iter().any(|p| p == name) {
        return Err(format!(
            "kernel module dependency cycle: {} -> {name}",
            path.join(" -> ")
        ));
    }
    let deps = depends_of(name).map_err(|e| match path.is_empty() {
        true => e,
        false => format!("{e} (needed through {})", path.join(" -> ")),
    })?;
    path.push(name.to_string());
    if let Some(deps) = deps {
        for dep in deps {
            visit(&dep, depends_of, path, done, order)?;
        }
        order.push(name.to_string());
    }
    path.pop();
    done.insert(name.to_string());
    Ok(())
}

/// The modules of one kernel: `lib/modules/<version>` of an unpacked kernel package.
#[derive(Debug)]
pub struct ModuleTree {
    root: PathBuf,
    /// Plain `.ko` files by module name.
    files: BTreeMap<String, PathBuf>,
    /// Compressed ones (`.ko.xz`, `.ko.zst`, `.ko.gz`), which busybox's insmod cannot load.
    compressed: BTreeMap<String, PathBuf>,
    /// Modules built into the kernel (`modules.builtin`).
    builtin: BTreeSet<String>,
}

impl ModuleTree {
    /// Indexes the modules under `root` (`…/lib/modules/<version>`).
    ///
    /// # Errors
    /// `root/kernel` cannot be read.
    pub fn scan(root: &Path) -> Result<Self, String> {
        let mut tree = Self {
            root: root.to_path_buf(),
            files: BTreeMap::new(),
            compressed: BTreeMap::new(),
            builtin: BTreeSet::new(),
        };
        let mut dirs = vec![root.join("kernel")];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for path in entries.filter_map(Result::ok).map(|e| e.path()) {
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    tree.add_file(path);
                }
            }
        }
        // Not every kernel package ships it: then nothing is taken as built in.
        let builtin = std::fs::read_to_string(root.join("modules.builtin")).unwrap_or_default();
        tree.builtin = builtin.lines().filter_map(stem_of).map(module_name).collect();
        Ok(tree)
    }

    fn add_file(&mut self, path: PathBuf) {
        let Some(file) = path.file_name().map(|n| n.to_string_lossy().to_string()) else {
            return;
        };
        if let Some(stem) = file.strip_suffix(".ko") {
            self.files.insert(module_name(stem), path);
        } else if let Some(stem) = stem_of(&file) {
            self.compressed.insert(module_name(stem), path);
        }
    }

    /// `wanted` and their dependencies as `.ko` files, in load order ([`dependency_order`]);
    /// modules built into the kernel are left out.
    ///
    /// # Errors
    /// A module that is neither a `.ko` here nor built in, a compressed one, an unreadable
    /// one, or a cycle.
    pub fn load_order(&self, wanted: &[&str]) -> Result<Vec<PathBuf>, String> {
        let names = dependency_order(wanted, |name| {
            if let Some(path) = self.files.get(name) {
                let elf = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                depends(&elf)
                    .map(Some)
                    .map_err(|e| format!("{}: {e}", path.display()))
            } else if self.builtin.contains(name) {
                Ok(None)
            } else if let Some(path) = self.compressed.get(name) {
                Err(format!(
                    "kernel module {name} is compressed ({}); the guest's insmod loads plain .ko files",
                    path.display()
                ))
            } else {
                Err(format!(
                    "kernel module {name} is neither in {} nor built in",
                    self.root.display()
                ))
            }
        })?;
        Ok(names.iter().filter_map(|n| self.files.get(n).cloned()).collect())
    }
}

/// A module file's name without `.ko` and a compression suffix (`a/b/virtio.ko.xz` ->
/// `virtio`); `None` for other files.
fn stem_of(file: &str) -> Option<&str> {
    let file = file.rsplit('/').next()?;
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|suffix| file.strip_suffix(suffix))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test: a failed unwrap is a failed test")]

    use super::*;

    /// The dependencies of Debian's kernel 6.1.0-57's virtio modules, as their `.modinfo`
    /// sections give them (`objcopy --only-section=.modinfo`): `virtio` needs `virtio_ring`.
    fn debian_6_1_0_57(name: &str) -> Result<Option<Vec<String>>, String> {
        let deps: &[&str] = match name {
            "virtio" => &["virtio_ring"],
            "virtio_ring" | "virtio_pci_modern_dev" | "virtio_pci_legacy_dev" => &[],
            "virtio_pci" => &[
                "virtio_ring",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio",
            ],
            "virtio_balloon" | "virtio_blk" => &["virtio", "virtio_ring"],
            _ => return Err(format!("no module {name}")),
        };
        Ok(Some(deps.iter().map(|d| (*d).to_string()).collect()))
    }

    fn position(order: &[String], name: &str) -> usize {
        order.iter().position(|n| n == name).unwrap()
    }

    #[test]
    fn kmod_order_puts_every_module_after_what_it_depends_on() {
        let wanted = ["virtio_pci", "virtio_balloon", "virtio_blk"];
        let order = dependency_order(&wanted, debian_6_1_0_57).unwrap();
        assert_eq!(order.len(), 7, "each module once: {order:?}");
        for name in &order {
            for dep in debian_6_1_0_57(name).unwrap().unwrap() {
                assert!(
                    position(&order, &dep) < position(&order, name),
                    "{dep} before {name}: {order:?}"
                );
            }
        }
        assert!(position(&order, "virtio_ring") < position(&order, "virtio"));
    }

    #[test]
    fn kmod_order_leaves_out_built_in_modules_and_names_missing_ones() {
        let builtin_ring = |name: &str| match name {
            "virtio_ring" => Ok(None),
            _ => debian_6_1_0_57(name),
        };
        let order = dependency_order(&["virtio_balloon"], builtin_ring).unwrap();
        assert_eq!(order, ["virtio", "virtio_balloon"]);
        let no_ring = |name: &str| match name {
            "virtio_ring" => Err("kernel module virtio_ring is neither here nor built in".to_string()),
            _ => debian_6_1_0_57(name),
        };
        let err = dependency_order(&["virtio_balloon"], no_ring).unwrap_err();
        assert!(
            err.contains("virtio_ring") && err.contains("needed through virtio_balloon -> virtio"),
            "{err}"
        );
    }

    #[test]
    fn kmod_order_reports_a_cycle() {
        let cycle = |name: &str| {
            Ok(Some(vec![match name {
                "a" => "b".to_string(),
                "b" => "c".to_string(),
                _ => "a".to_string(),
            }]))
        };
        let err = dependency_order(&["a"], cycle).unwrap_err();
        assert!(err.contains("cycle: a -> b -> c -> a"), "{err}");
    }

    #[test]
    fn kmod_names_treat_dash_and_underscore_alike() {
        let deps = |name: &str| match name {
            "snd_hda" => Ok(Some(vec!["snd_core".to_string()])),
            _ => Ok(Some(vec![])),
        };
        assert_eq!(
            dependency_order(&["snd-hda"], deps).unwrap(),
            ["snd_core", "snd_hda"]
        );
        assert_eq!(
            stem_of("kernel/drivers/virtio/virtio_ring.ko.xz"),
            Some("virtio_ring")
        );
        assert_eq!(stem_of("modules.order"), None);
    }

    /// A relocatable ELF object with a `.modinfo` section, as a module has.
    fn object_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        use object::write::Object;
        let mut obj = Object::new(
            object::BinaryFormat::Elf,
            object::Architecture::X86_64,
            object::Endianness::Little,
        );
        let section = obj.add_section(
            Vec::new(),
            b".modinfo".to_vec(),
            object::SectionKind::ReadOnlyData,
        );
        obj.append_section_data(section, modinfo, 1);
        obj.write().unwrap()
    }

    #[test]
    fn kmod_depends_reads_the_modinfo_section() {
        let elf = object_with_modinfo(
            b"license=GPL\0depends=virtio_ring,virtio-pci\0name=virtio_x\0vermagic=6.1.0\0",
        );
        assert_eq!(depends(&elf).unwrap(), ["virtio_ring", "virtio_pci"]);
        let info = modinfo(&elf).unwrap();
        assert!(
            info.contains(&("name".to_string(), "virtio_x".to_string())),
            "{info:?}"
        );
        assert!(
            depends(&object_with_modinfo(b"depends=\0name=virtio_ring\0"))
                .unwrap()
                .is_empty()
        );
        assert!(
            depends(b"not an object")
                .unwrap_err()
                .contains("not an ELF object")
        );
    }
}
