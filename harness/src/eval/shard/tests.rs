//! Shards split a grid into disjoint slices that cover it; `auto` reads Slurm's and
//! Kubernetes' variables.

use std::collections::HashMap;

use super::*;
use crate::eval::formulation::FormulationName;
use crate::eval::paper::{cells, shipped_scenarios};

#[test]
fn shard_slices_are_disjoint_and_cover_the_grid() {
    let scenarios = shipped_scenarios().unwrap();
    let protocol = Protocol::quick(3, FormulationName::ALL.to_vec());
    let grid = cells(&scenarios, &protocol);
    for count in [1, 2, 4, 7, grid.len() as u32 + 3] {
        let mut seen: Vec<String> = (0..count)
            .flat_map(|index| Shard::new(index, count).unwrap().select(grid.clone()))
            .map(|c| c.file_name())
            .collect();
        assert_eq!(seen.len(), grid.len(), "{count} shards");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), grid.len(), "{count} shards: no cell twice");
    }
    assert!(Shard::new(2, 2).is_err() && Shard::new(0, 0).is_err());
}

#[test]
fn shard_arguments_parse() {
    assert_eq!("3/8".parse(), Ok(ShardArg::Fixed(Shard { index: 3, count: 8 })));
    assert_eq!("auto".parse(), Ok(ShardArg::Auto));
    for bad in ["8/8", "3", "a/2", "1/-2", ""] {
        assert!(bad.parse::<ShardArg>().is_err(), "{bad}");
    }
}

#[test]
fn shard_auto_reads_slurm_and_kubernetes() {
    let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let from = |e: HashMap<String, String>| Shard::from_env(|k| e.get(k).cloned());
    let slurm = env(&[
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "8"),
    ]);
    assert_eq!(from(slurm), Ok(Shard { index: 4, count: 8 }));
    let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("CAVMEM_SHARD_COUNT", "3")]);
    assert_eq!(from(k8s), Ok(Shard { index: 2, count: 3 }));
    let no_count = env(&[("JOB_COMPLETION_INDEX", "2")]);
    assert!(from(no_count).unwrap_err().contains("CAVMEM_SHARD_COUNT"));
    let past = env(&[("SLURM_ARRAY_TASK_ID", "9"), ("SLURM_ARRAY_TASK_COUNT", "8")]);
    assert!(from(past).is_err());
    assert!(from(env(&[])).unwrap_err().contains("SLURM_ARRAY_TASK_ID"));
    let garbage = env(&[("SLURM_ARRAY_TASK_ID", "x"), ("SLURM_ARRAY_TASK_COUNT", "8")]);
    assert!(from(garbage).unwrap_err().contains("SLURM_ARRAY_TASK_ID"));
}
