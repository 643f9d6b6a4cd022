//! Which running pods `status` reads the sidecar log of, when a fleet has more than it should
//! ask the API server for. A log read costs the API server and the kubelet a request each: at
//! 1,000 pods they took 3.6 s where the pod listing took 0.35 s (BENCHMARKS.md). Pods whose
//! sidecars could behave differently are told apart by [`Placement`] (node, controller, proxy
//! image, Istio revision, log levels), and the sample holds some of every such group, so a
//! problem that depends on any of them shows.
use std::collections::BTreeMap;

use super::select::PodView;

/// The default number of pods whose logs `status` reads.
pub const DEFAULT_SAMPLE: usize = 50;

/// Indices (into `pods`) of the pods to read, in `pods`' order: every running pod with a
/// sidecar when there are at most `limit` (0: no limit). Otherwise pods whose sidecar restarted
/// or is not ready come first (they are the likeliest to tell of a problem), then one pod of
/// each group in turn, so no group is left out before every group has one.
pub fn choose(pods: &[PodView], limit: usize) -> Vec<usize> {
    let candidates: Vec<usize> = (0..pods.len())
        .filter(|&i| pods[i].has_proxy && pods[i].phase == "Running")
        .collect();
    if limit == 0 || candidates.len() <= limit {
        return candidates;
    }
    let mut chosen = vec![false; pods.len()];
    let mut count = 0;
    for &i in &candidates {
        let placement = &pods[i].placement;
        if count < limit && (placement.proxy_restarts > 0 || !placement.proxy_ready) {
            chosen[i] = true;
            count += 1;
        }
    }
    let mut groups: BTreeMap<GroupKey<'_>, Vec<usize>> = BTreeMap::new();
    for &i in candidates.iter().filter(|&&i| !chosen[i]) {
        groups.entry(GroupKey::of(&pods[i])).or_default().push(i);
    }
    let groups: Vec<Vec<usize>> = groups.into_values().collect();
    let mut round = 0;
    while count < limit {
        let mut took = false;
        for group in &groups {
            if count == limit {
                break;
            }
            if let Some(&i) = group.get(round) {
                chosen[i] = true;
                count += 1;
                took = true;
            }
        }
        if !took {
            break;
        }
        round += 1;
    }
    (0..pods.len()).filter(|&i| chosen[i]).collect()
}

/// What two pods must share to count as alike.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey<'a> {
    owner: Option<&'a str>,
    node: Option<&'a str>,
    proxy_image: Option<&'a str>,
    revision: Option<&'a str>,
    component_log_level: Option<&'a str>,
    log_level: Option<&'a str>,
}

impl<'a> GroupKey<'a> {
    fn of(pod: &'a PodView) -> Self {
        GroupKey {
            owner: pod.placement.owner.as_deref(),
            node: pod.placement.node.as_deref(),
            proxy_image: pod.placement.proxy_image.as_deref(),
            revision: pod.placement.revision.as_deref(),
            component_log_level: pod.component_log_level.as_deref(),
            log_level: pod.log_level.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::select::Placement;

    fn pod(name: &str, owner: &str, node: &str) -> PodView {
        PodView {
            name: name.into(),
            uid: format!("uid-{name}"),
            phase: "Running".into(),
            labels: Default::default(),
            has_proxy: true,
            component_log_level: None,
            log_level: None,
            placement: Placement {
                node: Some(node.into()),
                owner: Some(owner.into()),
                proxy_ready: true,
                ..Placement::default()
            },
        }
    }

    fn names(pods: &[PodView], chosen: &[usize]) -> Vec<String> {
        chosen.iter().map(|&i| pods[i].name.clone()).collect()
    }

    #[test]
    fn a_fleet_within_the_limit_is_read_whole_and_pods_without_a_running_sidecar_never() {
        let mut pods: Vec<PodView> = (0..5).map(|i| pod(&format!("p{i}"), "rs/a", "n")).collect();
        pods[1].has_proxy = false;
        pods[3].phase = "Pending".into();
        assert_eq!(names(&pods, &choose(&pods, 10)), ["p0", "p2", "p4"]);
        assert_eq!(names(&pods, &choose(&pods, 0)), ["p0", "p2", "p4"]);
    }

    #[test]
    fn every_rollout_step_and_node_is_read_before_a_second_pod_of_any() {
        // 90 pods of the old ReplicaSet, 10 of the new one, on two nodes.
        let mut pods = Vec::new();
        for i in 0..100 {
            let owner = if i < 90 {
                "ReplicaSet/web-old"
            } else {
                "ReplicaSet/web-new"
            };
            let node = if i % 2 == 0 { "node-a" } else { "node-b" };
            pods.push(pod(&format!("web-{i:03}"), owner, node));
        }
        let chosen = choose(&pods, 4);
        assert_eq!(chosen.len(), 4);
        let mut kinds: Vec<(String, String)> = chosen
            .iter()
            .map(|&i| {
                let p = &pods[i].placement;
                (p.owner.clone().unwrap(), p.node.clone().unwrap())
            })
            .collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), 4, "one pod of each (owner, node): {kinds:?}");
    }

    #[test]
    fn restarted_and_unready_sidecars_are_read_first() {
        let mut pods: Vec<PodView> = (0..50)
            .map(|i| pod(&format!("p{i:02}"), "rs/a", "n"))
            .collect();
        pods[30].placement.proxy_restarts = 2;
        pods[40].placement.proxy_ready = false;
        let chosen = names(&pods, &choose(&pods, 3));
        assert!(chosen.contains(&"p30".to_string()), "{chosen:?}");
        assert!(chosen.contains(&"p40".to_string()), "{chosen:?}");
        assert_eq!(chosen.len(), 3);
    }

    #[test]
    fn a_different_log_level_or_proxy_image_is_a_group_of_its_own() {
        let mut pods: Vec<PodView> = (0..20)
            .map(|i| pod(&format!("p{i:02}"), "rs/a", "n"))
            .collect();
        pods[17].component_log_level = Some("wasm:debug".into());
        pods[19].placement.proxy_image = Some("proxyv2:1.32".into());
        let chosen = names(&pods, &choose(&pods, 3));
        assert_eq!(chosen, ["p00", "p17", "p19"]);
    }
}
