//! Plans as text for people (`+ create`, `~ update field: old -> new`, `-/+ replace (why)`,
//! `- delete`; colour on a terminal only) and as the stable JSON shape of `--json`.

use std::fmt::Write;

use crate::reconcile::{Action, FieldDiff, Plan, ResourceChange};

/// Whether to colour: stdout is a terminal and NO_COLOR is unset.
pub fn colour_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
}

fn value(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(none)")
}

fn field_line(f: &FieldDiff, action: Action) -> String {
    match (action, &f.old) {
        (Action::Create, None) => format!("{}: {}", f.field, value(&f.new)),
        _ => format!("{}: {} -> {}", f.field, value(&f.old), value(&f.new)),
    }
}

/// One resource's lines.
pub fn resource(r: &ResourceChange, colour: bool) -> String {
    let (sign, code) = match r.change.action {
        Action::Create => ("+", "32"),
        Action::Update => ("~", "33"),
        Action::Replace => ("-/+", "35"),
        Action::Delete => ("-", "31"),
        Action::NoOp => ("=", "2"),
    };
    let id = r.id.as_deref().map(|i| format!(" ({i})")).unwrap_or_default();
    let reason = r.change.reason.as_deref().map(|why| format!(": replace because {why}")).unwrap_or_default();
    let mut out = format!("  {} {} {}{id}{reason}\n", paint(sign, code, colour), r.kind, r.name);
    for f in &r.change.fields {
        let _ = writeln!(out, "      {}", field_line(f, r.change.action));
    }
    out
}

/// The changes of a plan and its summary line; unchanged resources are counted, not listed.
pub fn plan(p: &Plan, colour: bool) -> String {
    let mut out = String::new();
    for r in p.resources.iter().filter(|r| !r.change.is_no_op()) {
        out.push_str(&resource(r, colour));
    }
    let s = p.summary();
    if p.has_changes() {
        let _ = writeln!(
            out,
            "\nPlan: {} to create, {} to update, {} to replace, {} to delete, {} unchanged.",
            s.create, s.update, s.replace, s.delete, s.unchanged
        );
    } else {
        let _ = writeln!(out, "No changes: {} resources match stack.yaml.", s.unchanged);
    }
    for n in &p.notes {
        let _ = writeln!(out, "Note: {n}");
    }
    out
}

/// A markdown report for a CI job summary: a heading, the changes as a table, and extra lines.
pub fn markdown(title: &str, p: &Plan, extra: &[String]) -> String {
    let mut out = format!("## {title}\n\n");
    let s = p.summary();
    let _ = writeln!(
        out,
        "{} to create, {} to update, {} to replace, {} to delete, {} unchanged.\n",
        s.create, s.update, s.replace, s.delete, s.unchanged
    );
    if p.has_changes() {
        out.push_str("| change | kind | name | details |\n| --- | --- | --- | --- |\n");
        for r in p.resources.iter().filter(|r| !r.change.is_no_op()) {
            let sign = match r.change.action {
                Action::Create => "+ create",
                Action::Update => "~ update",
                Action::Replace => "-/+ replace",
                Action::Delete => "- delete",
                Action::NoOp => "",
            };
            let details: Vec<String> =
                r.change.fields.iter().map(|f| field_line(f, r.change.action).replace('|', "\\|")).collect();
            let _ = writeln!(out, "| {sign} | {} | `{}` | {} |", r.kind, r.name, details.join("<br>"));
        }
        out.push('\n');
    }
    for n in &p.notes {
        let _ = writeln!(out, "> {n}\n");
    }
    for line in extra {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Appends `text` to the file GitHub Actions shows as the job summary, when running there.
pub fn github_summary(text: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else { return };
    use std::io::Write as _;
    match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        Ok(mut f) => {
            let _ = writeln!(f, "{text}");
        }
        Err(e) => eprintln!("warning: cannot write the job summary: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::Change;

    #[test]
    fn renders_each_action() {
        let mut p = Plan::default();
        p.push(
            crate::reconcile::Noun::new("vpc"),
            "s-vpc",
            None,
            Change::create(vec![FieldDiff::new("cidr", None, Some("10.0.0.0/16".into()))]),
        );
        p.push(
            crate::reconcile::Noun::new("security-group"),
            "s-alb",
            Some("sg-1".into()),
            Change::update(vec![FieldDiff::new("ingress", Some("tcp/22 from 0.0.0.0/0".into()), None)]),
        );
        p.push(
            crate::reconcile::Noun::new("subnet"),
            "s-a",
            Some("subnet-1".into()),
            Change::replace("a subnet's CIDR block cannot change", vec![]),
        );
        p.push(crate::reconcile::Noun::new("subnet"), "s-b", Some("subnet-2".into()), Change::delete());
        p.push(crate::reconcile::Noun::new("route-table"), "s-rt", Some("rtb-1".into()), Change::no_op());
        let text = plan(&p, false);
        assert_eq!(
            text,
            "  + vpc s-vpc\n      cidr: 10.0.0.0/16\n  ~ security-group s-alb (sg-1)\n      ingress: tcp/22 from 0.0.0.0/0 -> (none)\n  \
             -/+ subnet s-a (subnet-1): replace because a subnet's CIDR block cannot change\n  - subnet s-b (subnet-2)\n\n\
             Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 1 unchanged.\n"
        );
        assert!(plan(&p, true).contains("\x1b[32m+\x1b[0m"));
        let json = serde_json::to_value(&p).expect("serializes");
        assert_eq!(json["resources"][0]["action"], "create");
        assert_eq!(json["resources"][4]["action"], "no-op");
        assert_eq!(json["resources"][2]["reason"], "a subnet's CIDR block cannot change");
        let md = markdown("provisioner up", &p, &["URL: http://x".into()]);
        assert!(md.contains("| + create | vpc | `s-vpc` | cidr: 10.0.0.0/16 |"), "{md}");
        assert!(md.ends_with("URL: http://x\n"));
    }
}
