//! Where each value of a YAML document is: a map from a dotted path (`network.cidr`,
//! `loadtest.endpoints[1].path`) to its line and column, so validation problems found after
//! deserializing can still point at the text.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Path -> position of every node of a document.
#[derive(Debug, Default)]
pub struct Positions(HashMap<String, Position>);

impl Positions {
    /// Maps every node of `yaml`; an unparsable document gives an empty map (its parse error
    /// is reported by the typed load, with its own location).
    pub fn of(yaml: &str) -> Self {
        let mut map = HashMap::new();
        if let Ok(root) = serde_saphyr::from_str::<Spanned<Tree>>(yaml) {
            walk(&root, String::new(), &mut map);
        }
        Self(map)
    }

    /// The position of `path`, or of its nearest ancestor present in the document (a problem
    /// with a defaulted field points at its section).
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.0.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Tree {
    Map(Vec<(String, Spanned<Tree>)>),
    Seq(Vec<Spanned<Tree>>),
    Leaf,
}

fn walk(node: &Spanned<Tree>, path: String, map: &mut HashMap<String, Position>) {
    let loc = node.referenced;
    if loc.line() > 0 {
        map.insert(path.clone(), Position { line: loc.line(), column: loc.column() });
    }
    match &node.value {
        Tree::Map(entries) => {
            for (key, child) in entries {
                let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                walk(child, child_path, map);
            }
        }
        Tree::Seq(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{path}[{i}]"), map);
            }
        }
        Tree::Leaf => {}
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

macro_rules! leaf {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: serde::de::Error>(self, _: $ty) -> Result<Tree, E> { Ok(Tree::Leaf) })*
    };
}

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    leaf!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str, visit_string: String);

    fn visit_unit<E: serde::de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Tree>>()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<KeyText>()? {
            entries.push((key.0, map.next_value::<Spanned<Tree>>()?));
        }
        Ok(Tree::Map(entries))
    }
}

/// A mapping key of any scalar type, as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_flow_values_are_located() {
        let yaml =
            "name: demo\nnetwork: { cidr: 10.0.0.0/16, availability_zones: 2 }\nlist:\n  - path: /a\n  - path: /b\n";
        let p = Positions::of(yaml);
        assert_eq!(p.find("name"), Some(Position { line: 1, column: 7 }));
        assert_eq!(p.find("network.cidr").map(|p| p.line), Some(2));
        assert_eq!(p.find("list[1].path").map(|p| p.line), Some(5));
        // A missing field falls back to its section.
        assert_eq!(p.find("network.subnets").map(|p| p.line), Some(2));
        assert_eq!(p.find("nowhere.at.all"), None);
    }
}
