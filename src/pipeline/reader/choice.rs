//! The multiline rules one file is assembled with: the node's `parse.multiline` unless the
//! pod's `sluice.io/multiline-<container>` or `sluice.io/multiline` annotation names a preset,
//! `auto` or `none`. Resolved per file when its metadata is rendered, never per line; it must
//! never change the rules under a line or group in progress (the assembler refuses that).

use std::sync::Arc;

use crate::parse::multiline::{self, Builtin, Rules};

/// Every choice an annotation can make, built once at start (a few regexes each).
pub(super) struct MultilineChoices {
    node: Option<Arc<Rules>>,
    presets: Vec<(Builtin, Option<Arc<Rules>>)>,
}

/// The values an annotation may take, for the refusal message.
const NAMES: &str = "auto, none, java, python, go, ruby, node, dotnet, php";

impl MultilineChoices {
    /// `node`: the node's own rules; `max_lines`: the node's bound, kept for every preset.
    pub(super) fn new(
        node: Option<Arc<Rules>>,
        max_lines: u32,
    ) -> Result<MultilineChoices, multiline::MultilineError> {
        use Builtin::*;
        let mut presets = Vec::new();
        for b in [Auto, None, Go, Java, Python, Ruby, Node, Dotnet, Php] {
            let rules = if b == None {
                Option::None
            } else {
                Some(Arc::new(Rules::new(&multiline::Config {
                    parsers: vec![b],
                    start_pattern: Option::None,
                    max_lines,
                })?))
            };
            presets.push((b, rules));
        }
        Ok(MultilineChoices { node, presets })
    }

    /// The rules for a file whose pod asks for `annotation` (or nothing). An unknown value is
    /// refused with a message naming the allowed ones; the file keeps the node's rules.
    pub(super) fn resolve(&self, annotation: Option<&str>) -> Result<Option<Arc<Rules>>, String> {
        let Some(value) = annotation else {
            return Ok(self.node.clone());
        };
        let wanted = Builtin::parse(&value.to_ascii_lowercase());
        match self.presets.iter().find(|(b, _)| Some(*b) == wanted) {
            Some((_, rules)) => Ok(rules.clone()),
            Option::None => {
                // Annotations are the tenant's: never log more of one than a name's worth.
                let shown: String = value.chars().take(64).collect();
                Err(format!("`{shown}` is not one of {NAMES}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_pick_a_preset_none_or_the_node_rules() {
        let node = Arc::new(Rules::new(&multiline::Config::auto()).unwrap());
        let c = MultilineChoices::new(Some(node.clone()), 1000).unwrap();
        let same =
            |a: &Option<Arc<Rules>>, b: &Arc<Rules>| a.as_ref().is_some_and(|a| Arc::ptr_eq(a, b));
        assert!(same(&c.resolve(Option::None).unwrap(), &node));
        assert!(c.resolve(Some("none")).unwrap().is_none());
        let java = c.resolve(Some("Java")).unwrap().expect("java rules");
        assert!(!Arc::ptr_eq(&java, &node));
        assert!(Arc::ptr_eq(
            &java,
            &c.resolve(Some("java")).unwrap().unwrap()
        ));
        let err = c.resolve(Some("cobol; drop table")).unwrap_err();
        assert!(err.contains("cobol") && err.contains("dotnet"), "{err}");
    }
}
