//! `template.yaml` agrees with the adapters: the token table's keys and TTL attribute are the
//! ones `tokens` uses, and every `${...}` of the state-machine definition is substituted.

use wme_aws::tokens::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};

fn read(path: &str) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap()
}

/// The text of one top-level resource: from `  <name>:` to the next line that starts another
/// (two spaces, then a capital letter).
fn resource<'a>(template: &'a str, name: &str) -> &'a str {
    let start = template
        .find(&format!("\n  {name}:\n"))
        .expect("resource in template")
        + 1;
    let body = &template[start..];
    let end = body
        .match_indices("\n  ")
        .map(|(i, _)| i)
        .find(|&i| body[i + 3..].starts_with(|c: char| c.is_ascii_uppercase()))
        .unwrap_or(body.len());
    &body[..end]
}

#[test]
fn token_table_is_keyed_and_expires_as_the_store_expects() {
    let template = read("template.yaml");
    let table = resource(&template, "TokenTable");
    let hash = format!("- AttributeName: {PARTITION_KEY}\n          KeyType: HASH");
    let range = format!("- AttributeName: {SORT_KEY}\n          KeyType: RANGE");
    assert!(table.contains(&hash), "{table}");
    assert!(table.contains(&range), "{table}");
    assert!(table.contains(&format!(
        "AttributeName: {TTL_ATTRIBUTE}\n        Enabled: true"
    )));
    assert!(table.contains("PointInTimeRecoveryEnabled: true"));
    assert!(table.contains("SSEEnabled: true"));
    assert!(
        !table.contains("GlobalSecondaryIndexes"),
        "lookups need no index"
    );
}

#[test]
fn every_definition_substitution_is_provided() {
    let template = read("template.yaml");
    let machine = resource(&template, "FirmwareUpgradeStateMachine");
    let definition = read("statemachine/firmware_upgrade.asl.json");
    let mut names: Vec<&str> = definition
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in names {
        assert!(
            machine.contains(&format!("        {name}: !GetAtt ")),
            "{name} not substituted"
        );
    }
}
