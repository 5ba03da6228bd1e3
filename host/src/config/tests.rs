use super::*;

#[test]
fn trigger_settings_outside_the_services_limits_are_named() {
    let message = |text: &str| {
        let config = RunConfig::parse(text).unwrap();
        config.trigger.queue_options().unwrap_err().to_string()
    };
    let sqs = "[trigger]\nqueue = \"https://sqs.eu-west-1.amazonaws.com/1/q\"\n";
    let azure = "[trigger]\nqueue = \"https://acme.queue.core.windows.net/q\"\n";
    let err = message(&format!("{sqs}max_messages = 11\n"));
    assert!(
        err.contains("[trigger] max_messages (--max-messages) is 11: sqs takes 1 to 10"),
        "{err}"
    );
    let err = message(&format!("{azure}max_messages = 33\n"));
    assert!(err.contains("azure takes 1 to 32"), "{err}");
    let err = message(&format!("{azure}max_messages = 0\n"));
    assert!(err.contains("is 0"), "{err}");
    let err = message(&format!("{sqs}visibility_secs = 0\n"));
    assert!(
        err.contains("visibility_secs (--visibility-secs) must be at least 1 s"),
        "{err}"
    );
    let err = message(&format!("{sqs}wait_secs = 21\n"));
    assert!(
        err.contains("wait_secs (--wait-secs) is 21: SQS long polling waits at most 20 s"),
        "{err}"
    );
    let err = message("[trigger]\nqueue = \"http://127.0.0.1:9/1/q\"\n");
    assert!(err.contains("--queue-kind sqs"), "{err}");
    let err = RunConfig::parse("[trigger]\nqueu = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `queu`"), "{err}");
    // Azure polls: a longer wait is fine; defaults are the named constants.
    let ok = RunConfig::parse(&format!("{azure}wait_secs = 30\n")).unwrap();
    assert!(ok.trigger.queue_options().unwrap().is_some());
    let defaults = TriggerSection::default();
    assert_eq!(defaults.max_messages, crate::queue::DEFAULT_MAX_MESSAGES);
    assert_eq!(
        defaults.visibility_secs,
        crate::queue::DEFAULT_VISIBILITY_SECS
    );
    assert_eq!(defaults.wait_secs, crate::queue::DEFAULT_WAIT_SECS);
    assert_eq!(RunConfig::default().trigger.queue_options().unwrap(), None);
}

#[test]
fn unknown_keys_are_named() {
    let parse = |text: &str| RunConfig::parse(text).unwrap_err().to_string();
    let err = parse("[plugin]\npath = \"p.wasm\"\nmemroy_mib = 3\n");
    assert!(err.contains("unknown field `memroy_mib`"), "{err}");
    assert!(!err.contains('\n'));
    let err = parse("[sinc]\n");
    assert!(err.contains("unknown field `sinc`"), "{err}");
    let err = parse("[sink]\nendpoint = \"http://x/\"\nbatch = { max_rowz = 3 }\n");
    assert!(err.contains("unknown field `max_rowz`"), "{err}");
}

#[test]
fn defaults_are_the_named_constants() {
    let c = RunConfig::parse("").unwrap();
    assert_eq!(c.plugin.memory_mib, 256);
    assert_eq!(c.plugin.timeout_ms, 10_000);
    assert_eq!(c.plugin.batch_rows, DEFAULT_BATCH_ROWS);
    assert_eq!(c.records.shape, Shape::Nested);
    assert_eq!(
        c.output.dead_letter_dir(),
        PathBuf::from(DEFAULT_DEAD_LETTER_DIR)
    );
}

#[test]
fn missing_parts_are_named() {
    let msg = |c: RunConfig| c.validate().unwrap_err().to_string();
    assert_eq!(
        msg(RunConfig::default()),
        "no source: set --source or [source] url"
    );
    // No plugin is not an error any more (issue 17: the pass-through, or [mapping]).
    let with_source = RunConfig::parse("[source]\nurl = \"s\"\n").unwrap();
    assert_eq!(
        msg(with_source),
        "no endpoint: set --endpoint or [sink] endpoint"
    );
    let both = RunConfig::parse(
        "[source]\nurl = \"s\"\n[plugin]\npath = \"p\"\n[mapping]\ntype = \"T\"\nid = \"ID\"\n",
    )
    .unwrap();
    assert_eq!(
        msg(both),
        "both a plugin and a [mapping]: set one (--plugin / [plugin] path, or [mapping])"
    );
    let no_sink = RunConfig::parse("[source]\nurl = \"s\"\n[plugin]\npath = \"p\"\n").unwrap();
    assert_eq!(
        msg(no_sink),
        "no endpoint: set --endpoint or [sink] endpoint"
    );
    let big = RunConfig::parse(
            "[source]\nurl = \"s\"\n[plugin]\npath = \"p\"\n[sink]\nendpoint = \"http://h/upload/api/endpoint/x\"\nbatch = { max_rows = 100001 }\n",
        )
        .unwrap();
    assert!(msg(big).contains("batch.max_rows must be 1..=100000"));
}

#[test]
fn a_plugin_batch_above_the_segment_is_a_warning_naming_both() {
    let config =
        RunConfig::parse("[plugin]\nbatch_rows = 200000\n[state]\nsegment_rows = 10000\n").unwrap();
    assert_eq!(
        config.warnings(),
        vec![
            "[plugin] batch_rows = 200000 (--plugin-batch-rows) is more than [state] \
                 segment_rows = 10000 (--segment-rows): a plugin call never spans two \
                 segments, so plugin calls take at most 10000 rows"
                .to_string()
        ]
    );
    let within = RunConfig::parse("[plugin]\nbatch_rows = 500\n").unwrap();
    assert!(within.warnings().is_empty());
    // The default batch is capped without a word: nobody asked for it.
    let default = RunConfig::parse("[state]\nsegment_rows = 100\n").unwrap();
    assert!(default.warnings().is_empty());
}

#[test]
fn token_sources_are_checked() {
    let auth = AuthSection {
        token_env: Some("STAGEPUSH_TEST_SURELY_UNSET_VAR".into()),
        token_file: None,
    };
    let err = auth.token().unwrap_err().to_string();
    assert_eq!(
        err,
        "the token environment variable STAGEPUSH_TEST_SURELY_UNSET_VAR is not set (use --token-env VAR or --token-file FILE)"
    );
    let dir = std::env::temp_dir().join(format!("stagepush-token-{}", std::process::id()));
    std::fs::write(&dir, "  secret-token\n").unwrap();
    let auth = AuthSection {
        token_env: None,
        token_file: Some(dir.clone()),
    };
    assert_eq!(auth.token().unwrap().expose_secret(), "secret-token");
    std::fs::remove_file(&dir).unwrap();
}
