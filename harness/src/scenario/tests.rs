//! Scenario parsing: the shipped files load, and each kind of mistake names file, key and reason.

use super::*;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"))
}

#[test]
fn scenario_shipped_files_load() {
    for (name, a, b) in [
        ("s1", Benchmark::Perlbench, Benchmark::Perlbench),
        ("s2", Benchmark::Perlbench, Benchmark::Gcc),
        ("s3", Benchmark::Gcc, Benchmark::Bzip2),
    ] {
        let s = Scenario::load(&shipped(name)).unwrap();
        assert_eq!(s.name, name);
        assert_eq!(s.node.capacity_bytes, 6 << 30);
        assert_eq!(s.node.floor_bytes, 384 << 20);
        assert_eq!(s.vms.len(), 2);
        assert_eq!((s.vms[0].benchmark, s.vms[1].benchmark), (a, b));
        assert_eq!(s.vms[0].copies, 6);
    }
    let live = Scenario::load(&shipped("live/perlbench-gcc")).unwrap();
    for vm in &live.vms {
        assert_eq!(
            vm.input_set,
            InputSet::Standin,
            "the live file simulates its own node"
        );
        assert_eq!(
            vm.fault_service_time_s,
            calibration::measured_fault_service_time_s(vm.benchmark).unwrap()
        );
    }
    let s3 = Scenario::load(&shipped("s3")).unwrap();
    assert_eq!(s3.vms[1].curve.kind, CurveKind::Calibrated(Benchmark::Bzip2));
    // The same node with a twin measured on it: same VMs, capacity and steps; every VM's
    // curve, stall and CPU rate from its node calibration.
    let node = Scenario::load(&shipped("live/perlbench-gcc-node")).unwrap();
    assert_eq!(node.node, live.node);
    for (vm, twin) in node.vms.iter().zip(&live.vms) {
        assert_eq!(
            (vm.benchmark, vm.copies, vm.input_set),
            (twin.benchmark, twin.copies, InputSet::Standin)
        );
        assert!(matches!(vm.curve.kind, CurveKind::Node(_)), "{:?}", vm.curve.kind);
        assert!(
            vm.cpu_per_copy > 0.0 && vm.cpu_per_copy <= 1.0,
            "{}",
            vm.cpu_per_copy
        );
        assert!(vm.fault_service_time_s > 0.0);
    }
}

fn error_of(text: &str) -> ScenarioError {
    Scenario::parse(Path::new("bad.toml"), text).unwrap_err()
}

const GOOD: &str = r#"
name = "t"
[node]
capacity = "6 GiB"
[[vm]]
workload = "gcc"
[[vm]]
workload = "bzip2"
"#;

#[test]
fn scenario_minimal_file_uses_defaults() {
    let s = Scenario::parse(Path::new("ok.toml"), GOOD).unwrap();
    assert_eq!(s.node.steps_per_episode, 100);
    assert_eq!(s.vms[1].curve.kind, CurveKind::Calibrated(Benchmark::Bzip2));
    assert_eq!(s.vms[0].vcpus, DEFAULT_COPIES);
    let n = &s.node;
    assert_eq!(
        (n.floor_bytes, n.granularity_bytes, n.initial_allocation_bytes),
        (384 << 20, 1 << 20, 1 << 30)
    );
    assert_eq!(
        (n.step_s, n.fault_service_time_s, n.measurement_noise),
        (1.0, 100e-6, 0.0)
    );
    assert_eq!(n.share, cavmem_core::bid::ShareRule::Proportional);
    assert_eq!(
        (s.vms[0].copy_start, s.vms[0].start),
        (CopyStart::InStep, StartPosition::Random)
    );
    assert_eq!((s.vms[0].arrive_step, s.vms[0].leave_step), (0, None));
}

#[test]
fn scenario_curves_calibrated_or_assumed() {
    let with = |curve: &str| {
        Scenario::parse(
            Path::new("c.toml"),
            &GOOD.replace("workload = \"bzip2\"", &format!("workload = \"bzip2\"\n{curve}")),
        )
    };
    assert_eq!(
        with("curve = \"assumed\"").unwrap().vms[1].curve.kind,
        CurveKind::Step
    );
    assert_eq!(
        with("curve = \"power_law\"").unwrap().vms[1].curve.kind,
        CurveKind::PowerLaw
    );
    let e = with("curve = \"calibrated\"\nalpha = 0.4").unwrap_err();
    assert_eq!(e.key, "vm[1].alpha");
    assert!(e.reason.contains("assumed curves"), "{e}");
    let e = with("curve = \"measured\"").unwrap_err();
    assert_eq!(e.key, "vm[1].curve");
}

#[test]
fn scenario_standin_inputs_and_measured_stall() {
    let text = GOOD.replace(
        "workload = \"gcc\"",
        "workload = \"gcc\"\ninputs = \"standin\"\nfault_service_time = \"measured\"",
    );
    let s = Scenario::parse(Path::new("t.toml"), &text).unwrap();
    let (twin, spec) = (&s.vms[0], &s.vms[1]);
    assert_eq!(twin.input_set, InputSet::Standin);
    assert_eq!(twin.inputs.len(), 1);
    let footprint = twin.inputs[0].footprint_mib;
    assert!(
        (100.0..200.0).contains(&footprint),
        "gcc stand-in: {footprint} MiB"
    );
    assert!(
        (500e-6..2e-3).contains(&twin.fault_service_time_s),
        "gcc stand-in stalls 710-1,446 us per fault: {}",
        twin.fault_service_time_s
    );
    assert_eq!(
        (spec.input_set, spec.inputs),
        (InputSet::Spec, Benchmark::Bzip2.inputs())
    );
    assert_eq!(spec.fault_service_time_s, s.node.fault_service_time_s);
    let own = Scenario::parse(
        Path::new("t.toml"),
        &GOOD.replace(
            "workload = \"gcc\"",
            "workload = \"gcc\"\nfault_service_time = \"250 us\"",
        ),
    )
    .unwrap();
    assert_eq!(own.vms[0].fault_service_time_s, 250e-6);
    for (value, key) in [
        ("inputs = \"ref\"", "vm[0].inputs"),
        ("fault_service_time = \"guessed\"", "vm[0].fault_service_time"),
        ("fault_service_time = \"2 s\"", "vm[0].fault_service_time"),
    ] {
        let e = error_of(&GOOD.replace("workload = \"gcc\"", &format!("workload = \"gcc\"\n{value}")));
        assert_eq!(e.key, key, "{value}: {e}");
    }
}

#[test]
fn scenario_errors_name_file_key_and_reason() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"capacity = "6 GiB""#, r#"capacity = "6""#, "node.capacity"),
        (r#"capacity = "6 GiB""#, r#"capacity = "6 s""#, "node.capacity"),
        (
            r#"capacity = "6 GiB""#,
            "capacity = \"6 GiB\"\nfloor = \"4 GiB\"",
            "node.capacity",
        ),
        (
            r#"capacity = "6 GiB""#,
            "capacity = \"6 GiB\"\ncolour = \"red\"",
            "node.colour",
        ),
        (
            r#"capacity = "6 GiB""#,
            "capacity = \"6 GiB\"\nfault_service_time = \"2 MiB\"",
            "node.fault_service_time",
        ),
        (
            r#"capacity = "6 GiB""#,
            "capacity = \"6 GiB\"\nsteps_per_episode = 0",
            "node.steps_per_episode",
        ),
        (
            r#"capacity = "6 GiB""#,
            "capacity = \"6 GiB\"\ninitial_allocation = \"4 GiB\"",
            "node.initial_allocation",
        ),
        (r#"workload = "bzip2""#, r#"workload = "xz""#, "vm[1].workload"),
        (
            r#"capacity = "6 GiB""#,
            "capacity = \"6 GiB\"\nshare = \"fair\"",
            "node.share",
        ),
        (
            r#"workload = "bzip2""#,
            "workload = \"bzip2\"\ncopy_start = \"later\"",
            "vm[1].copy_start",
        ),
        (
            r#"workload = "bzip2""#,
            "workload = \"bzip2\"\nstart = \"middle\"",
            "vm[1].start",
        ),
        (
            r#"workload = "bzip2""#,
            "workload = \"bzip2\"\ncopies = 0",
            "vm[1].copies",
        ),
        (
            r#"workload = "bzip2""#,
            "workload = \"bzip2\"\nalpha = -1.0",
            "vm[1].alpha",
        ),
        (
            r#"workload = "bzip2""#,
            "workload = \"bzip2\"\ncopies = \"six\"",
            "vm[1].copies",
        ),
    ];
    for (from, to, key) in cases {
        let text = GOOD.replacen(from, to, 1);
        let e = error_of(&text);
        assert_eq!(e.file, Path::new("bad.toml"));
        assert_eq!(&e.key, key, "for {to:?}: {e}");
        assert!(!e.reason.is_empty());
        assert!(e.to_string().starts_with("bad.toml: "), "{e}");
    }
    let e = error_of("name = \"x\"\n[node\ncapacity = 1");
    assert!(!e.reason.is_empty());
}

#[test]
fn scenario_arrive_and_leave_are_checked() {
    for (to, key) in [
        ("workload = \"bzip2\"\narrive = 100", "vm[1].arrive"),
        ("workload = \"bzip2\"\narrive = 10\nleave = 10", "vm[1].leave"),
        ("workload = \"bzip2\"\nleave = 101", "vm[1].leave"),
    ] {
        let e = error_of(&GOOD.replacen(r#"workload = "bzip2""#, to, 1));
        assert_eq!(e.key, key, "for {to:?}: {e}");
    }
    let ok = GOOD.replacen(
        r#"workload = "bzip2""#,
        "workload = \"bzip2\"\narrive = 10\nleave = 90",
        1,
    );
    let s = Scenario::parse(Path::new("ok.toml"), &ok).unwrap();
    assert_eq!((s.vms[1].arrive_step, s.vms[1].leave_step), (10, Some(90)));
    assert!(
        !s.vms[1].present_at(9)
            && s.vms[1].present_at(10)
            && s.vms[1].present_at(89)
            && !s.vms[1].present_at(90)
    );
}
