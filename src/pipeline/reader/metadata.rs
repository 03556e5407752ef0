//! A file's context: rendered once its fingerprint is known and its pod's metadata has arrived
//! (or the wait is over), and again only when that metadata changes. Never blocks, never per
//! line.

use super::*;

/// How long a file waits for its pod while the agent's first pod list is under way and has not
/// failed (instead of `metadata_wait` only): on a node with a backlog, every file opens at start,
/// before a list that can take seconds. Bounded, as a list that neither answers nor fails would
/// otherwise hold the node's logs back.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(30);

/// Renders the file's context once its fingerprint is known. With Kubernetes on, a file whose
/// pod is not in the store yet waits (returns false) until the metadata arrives or `wait`
/// expires (`FIRST_LIST_WAIT` while the first list is pending); then it ships with what the path
/// tells. Never blocks.
pub(super) fn prepare_context(
    of: &mut OpenFile,
    node: &NodeFields,
    (choices, routing): (&choice::MultilineChoices, Option<&Routing>),
    delivery: &Mutex<Delivery>,
    kube: Option<&mut Kube>,
    fair: &mut fair::Fair,
    now: Instant,
) -> bool {
    let Some(fp) = of.tailed.fingerprint else {
        return false;
    };
    let found = match (&kube, &of.pod) {
        (Some(k), Some(p)) => k
            .store
            .find(p.pod_uid.as_deref(), &p.namespace, &p.pod_name),
        _ => None,
    };
    let wanted = kube.is_some() && of.pod.is_some();
    if let Some(k) = kube {
        let waited = now.duration_since(of.opened_at);
        let wait = if k.store.first_pod_list_pending() {
            k.wait.max(FIRST_LIST_WAIT)
        } else {
            k.wait
        };
        if found.is_none() && wanted && waited < wait {
            k.waiting.insert(of.key);
            return false;
        }
        k.waiting.remove(&of.key);
    }
    of.ctx = Some(render(
        of,
        fp,
        found.as_ref(),
        node,
        (choices, routing),
        wanted,
    ));
    fair.settle(&mut of.share, of.pod.as_ref(), found.as_ref());
    track(of, delivery);
    // Its index goes into the checkpoint before any of its lines is sealed: a restart keeps it.
    if let Some(route) = of.ctx.as_ref().and_then(|c| c.route.as_ref()) {
        delivery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_route(of.key, route.resolved_text());
    }
    true
}

/// Registers the file with delivery as soon as its fingerprint is known, before its context
/// (which may wait for Kubernetes metadata): from then on the checkpoint keeps its offset.
pub(super) fn track(of: &mut OpenFile, delivery: &Mutex<Delivery>) {
    let Some(fp) = of.tailed.fingerprint else {
        return;
    };
    if of.tracked {
        return;
    }
    let mut d = delivery.lock().unwrap_or_else(|p| p.into_inner());
    d.track(
        of.key,
        of.tailed.id,
        fp,
        of.tailed.path.clone(),
        of.tailed.real_path.clone(),
        of.resume,
    );
    d.set_ids(of.key, of.ids);
    of.tracked = true;
}

pub(super) fn render(
    of: &mut OpenFile,
    fp: crate::tail::Fingerprint,
    found: Option<&kubernetes::store::Found>,
    node: &NodeFields,
    (choices, routing): (&choice::MultilineChoices, Option<&Routing>),
    wanted: bool,
) -> FileContext {
    let api = found.map(|f| PodFields {
        pod: &f.pod,
        namespace_labels: &f.namespace_labels,
    });
    let source = kubernetes::path::source_identity(&of.tailed.path, &of.tailed.real_path);
    let mut ctx =
        FileContext::new(fp, &of.tailed.path, of.pod.as_ref(), api, node).identify(&source);
    ctx.partial = wanted && found.is_none();
    if let (Some(f), Some(p)) = (found, &of.pod) {
        ctx.skip = f.pod.excludes(&p.container_name);
        ctx.json = f
            .pod
            .parser_for(&p.container_name)
            .map(|parser| parser == kubernetes::meta::Parser::Json);
    }
    ctx.ids = of.ids;
    // Once per file: a re-rendering keeps the route the file started with.
    ctx.route = match of
        .ctx
        .as_ref()
        .and_then(|c| c.route.clone())
        .or_else(|| of.kept_route.take())
    {
        Some(kept) => Some(kept),
        None => routing.map(|r| r.resolve(of.pod.as_ref(), found, node)),
    };
    set_multiline(of, found, choices);
    of.meta_version = found.map(|f| f.version);
    ctx
}

/// The multiline rules of one file: its pod's annotation, else the node's. An annotation
/// naming no preset is logged and ignored (the node's rules apply). Rules never change under a
/// line or group in progress: a change that arrives then waits for the next rendering.
fn set_multiline(
    of: &mut OpenFile,
    found: Option<&kubernetes::store::Found>,
    choices: &choice::MultilineChoices,
) {
    let asked = match (found, &of.pod) {
        (Some(f), Some(p)) => f.pod.multiline_for(&p.container_name),
        _ => None,
    };
    let rules = choices.resolve(asked).unwrap_or_else(|reason| {
        tracing::warn!(
            path = %of.tailed.path.display(),
            annotation = "sluice.io/multiline",
            %reason,
            "ignoring the pod's multiline annotation; the node's rules apply"
        );
        choices.resolve(None).unwrap_or(None)
    });
    if !of.assembler.set_rules(rules) {
        tracing::debug!(path = %of.tailed.path.display(), "multiline rules change after the event in progress");
    }
}

impl Reader {
    /// Once per loop: files waiting for metadata get another look, and when the store changed,
    /// files whose pod's metadata changed are re-rendered (only those).
    pub(super) fn refresh_metadata(&mut self, dirty: &mut HashSet<FileKey>) {
        let Some(k) = &mut self.kube else {
            return;
        };
        dirty.extend(k.waiting.iter().copied());
        let generation = k.store.generation();
        if generation == k.seen {
            return;
        }
        k.seen = generation;
        for of in self.files.values_mut() {
            let (Some(ctx), Some(p)) = (&of.ctx, &of.pod) else {
                continue;
            };
            let Some(found) = k
                .store
                .find(p.pod_uid.as_deref(), &p.namespace, &p.pod_name)
            else {
                // Not (or no longer) known: keep what was rendered.
                continue;
            };
            if of.meta_version == Some(found.version) {
                continue;
            }
            let fp = ctx.fingerprint;
            let ctx = render(
                of,
                fp,
                Some(&found),
                &self.node,
                (&self.choices, self.routing.as_ref()),
                true,
            );
            of.ctx = Some(ctx);
            self.fair
                .settle(&mut of.share, of.pod.as_ref(), Some(&found));
        }
    }
}
