use super::*;

fn spec(faults: &[Fault]) -> RunSpec {
    RunSpec {
        faults: faults.to_vec(),
        ..RunSpec::default()
    }
}

/// Issue 24: `overbook up` held client-pause for 600 ms while a run with the same
/// defaults paused 1000 ms (twice the lease): one default now, the spec's.
#[test]
fn up_and_run_hit_with_the_same_default_strength() {
    let s = spec(&[Fault::ClientPause]);
    let run = s.check().unwrap().config(Backend::Local).fault_params();
    assert_eq!(s.fault_params().unwrap(), run);
    assert_eq!(run.client_pause, Duration::from_millis(1000));
    assert_eq!(run.jitter_pct, defaults::JITTER_PCT);
}

/// Building and checking a spec asks nothing of the machine: a docker run is checked
/// (and refused or not) with no engine to ask.
#[test]
fn checking_a_docker_spec_asks_docker_nothing() {
    let s = RunSpec {
        backend: BackendKind::Docker,
        redis_image: Some("no-such-image:never".into()),
        ..spec(&[Fault::KillDb])
    };
    let checked = s.check().unwrap();
    assert_eq!(checked.spec().backend, BackendKind::Docker);
    assert!(checked.command().contains("--backend docker"));
}

#[test]
fn a_checked_spec_spells_out_every_value_it_decided() {
    let checked = RunSpec {
        seed: Some(9),
        ..spec(&[Fault::SlowWrites, Fault::SlowWrites])
    }
    .check()
    .unwrap();
    let s = checked.spec();
    assert_eq!(s.faults, vec![Fault::SlowWrites]);
    assert_eq!(s.lock_ttl, Some(Duration::from_millis(500)));
    assert_eq!(s.client_pause, Some(Duration::from_millis(1000)));
    assert_eq!((s.rooms, s.window_days), (Some(5), Some(60)));
    assert_eq!(checked.seed(), 9);
    // Checking again changes nothing: the explicit spec is its own fixed point.
    assert_eq!(s.check().unwrap(), checked);
}

#[test]
fn combinations_are_refused_naming_the_flags() {
    let refused = |s: RunSpec| s.check().unwrap_err().to_string();
    let e = refused(RunSpec {
        backend: BackendKind::External,
        ..spec(&[Fault::None])
    });
    assert!(e.contains("--backend external needs both"), "{e}");
    let e = refused(spec(&[Fault::FailoverRedis]));
    assert!(e.contains("needs --lock-service sentinel"), "{e}");
    let e = refused(RunSpec {
        backend: BackendKind::External,
        redis_url: Some("redis://x".into()),
        postgres_url: Some("host=x".into()),
        ..spec(&[Fault::PauseDb])
    });
    assert!(e.contains("pause-db"), "{e}");
    let e = refused(RunSpec {
        concurrency: 0,
        ..spec(&[Fault::None])
    });
    assert!(e.contains("--concurrency 0 is out of range"), "{e}");
    let e = refused(RunSpec {
        time_limit: Duration::from_millis(100),
        ..spec(&[Fault::SlowWrites])
    });
    assert!(e.contains("no window of slow-writes fits"), "{e}");
}
