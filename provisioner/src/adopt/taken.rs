//! What of a Terraform state a stack takes over, found as `stack_file::describe` walks what the
//! service is attached to: the names AWS cannot change (what stack.yaml records under
//! `adopted:`), each with the address it came from, and the network's ids (our kinds find those
//! by a `Name` tag they do not carry yet).

use std::collections::BTreeMap;

/// The names and ids taken over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Taken {
    pub names: stack::Adopted,
    /// The address each name came from, by its key under `adopted:`.
    pub from: BTreeMap<&'static str, String>,
    pub vpc: Option<String>,
    pub subnets: Vec<String>,
    pub internet_gateway: Option<String>,
    pub route_table: Option<String>,
}

impl Taken {
    /// Records `name` under `key` (an `adopted:` key), from the resource at `address`.
    pub fn name(&mut self, key: &'static str, name: Option<String>, address: String) {
        let Some(name) = name.filter(|n| !n.is_empty()) else { return };
        if let Some(slot) = self.names.slot(key) {
            *slot = Some(name);
            self.from.insert(key, address);
        }
    }

    /// The `adopted:` block of a stack file: each name with the resource it came from.
    pub fn yaml(&self) -> Vec<String> {
        let set: Vec<(&str, &str)> = self.names.entries().into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
        if set.is_empty() {
            return Vec::new();
        }
        let mut out = vec![
            String::new(),
            "# What runs keeps its names (AWS cannot rename these): every kind uses them.".to_owned(),
            "adopted:".to_owned(),
        ];
        for (key, name) in set {
            let from = self.from.get(key).map(|a| format!("   # {a}")).unwrap_or_default();
            out.push(format!("  {key}: {}{from}", super::stack_file::yaml(name)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_recorded_with_their_address_and_written_in_key_order() {
        let mut t = Taken::default();
        t.name("task_role", Some("legacy-task".into()), "aws_iam_role.task".into());
        t.name("cluster", Some("legacy".into()), "aws_ecs_cluster.main".into());
        t.name("service", Some(String::new()), "aws_ecs_service.app".into());
        t.name("no_such_key", Some("x".into()), "aws_x.y".into());
        assert_eq!(t.names.cluster.as_deref(), Some("legacy"));
        assert_eq!(t.names.service, None, "an empty name is no name");
        let yaml = t.yaml().join("\n");
        assert!(
            yaml.contains("adopted:\n  cluster: legacy   # aws_ecs_cluster.main\n  task_role: legacy-task"),
            "{yaml}"
        );
        assert!(Taken::default().yaml().is_empty());
    }
}
