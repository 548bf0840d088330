//! A YAML document as a tree whose every node remembers where it is in the file
//! (`serde_saphyr::Spanned`), so a template error can point at the line and column the
//! operator wrote. The config reads a sink's `settings` through it too, so a setting the
//! plugin refuses is pointed at where it is written.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One YAML node. Mapping keys are kept as text, in file order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

/// Parses a whole file.
pub(crate) fn parse(source: &str) -> Result<Spanned<Node>, serde_saphyr::Error> {
    serde_saphyr::from_str(source)
}

/// `node` as JSON, maps in their order. (A float JSON cannot hold never gets here:
/// serde-saphyr refuses `.nan` and `.inf` when it parses.)
pub(crate) fn to_json(node: &Spanned<Node>) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Node::Null => J::Null,
        Node::Bool(b) => J::Bool(*b),
        Node::Int(i) => J::from(*i),
        Node::UInt(u) => J::from(*u),
        Node::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Node::Str(s) => J::String(s.clone()),
        Node::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Node::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(key, value)| (key.value.clone(), to_json(value)))
                .collect(),
        ),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom(format!("integer {v} is too large for JSON")))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        u64::try_from(v)
            .map(Node::UInt)
            .map_err(|_| E::custom(format!("integer {v} is too large for JSON")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &Spanned<Node>) -> (u64, u64) {
        (node.referenced.line(), node.referenced.column())
    }

    #[test]
    fn every_node_has_its_place() {
        let src = "\
a: 1
b: [true, null, 2.5, -3]
c:
  d: \"{{ x }}\"
  e: |
    line
";
        let root = parse(src).unwrap();
        let Node::Map(entries) = &root.value else {
            panic!("{root:?}")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.value.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(entries[0].1.value, Node::UInt(1));
        let Node::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        let values: Vec<&Node> = items.iter().map(|i| &i.value).collect();
        assert_eq!(
            values,
            [
                &Node::Bool(true),
                &Node::Null,
                &Node::Float(2.5),
                &Node::Int(-3)
            ]
        );
        assert_eq!(at(&items[2]), (2, 17));
        let Node::Map(inner) = &entries[2].1.value else {
            panic!()
        };
        assert_eq!(inner[0].1.value, Node::Str("{{ x }}".into()));
        assert_eq!(at(&inner[0].1), (4, 6));
        // A block scalar's place is its first content line.
        assert_eq!(inner[1].1.value, Node::Str("line\n".into()));
        assert_eq!(at(&inner[1].1), (6, 5));
    }

    #[test]
    fn a_tree_becomes_json_in_order() {
        let root = parse("b: [1, -2, 2.5, null, true]\na: {x: \"y\"}\n").unwrap();
        assert_eq!(
            to_json(&root).to_string(),
            r#"{"b":[1,-2,2.5,null,true],"a":{"x":"y"}}"#
        );
    }

    #[test]
    fn keys_that_are_not_text_become_text() {
        let root = parse("1: one\ntrue: yes\n").unwrap();
        let Node::Map(entries) = &root.value else {
            panic!()
        };
        assert_eq!(entries[0].0.value, "1");
        assert_eq!(entries[1].0.value, "true");
    }

    #[test]
    fn yaml_errors_have_a_place() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.location().is_some(), "{err}");
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
    }
}
