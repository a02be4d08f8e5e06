//! A fill-reducing order for the pose graph's normal matrix: reverse Cuthill–McKee (Cuthill &
//! McKee 1969; reversed as George 1971 showed). Loops tie each lap's keyframes to the laps before,
//! so in arrival order the matrix has entries far from its diagonal and its Cholesky factor fills
//! in almost completely; ordered by breadth-first levels, the places visited on every lap sit next
//! to each other and the factor stays banded.

use std::collections::VecDeque;

/// The position of each of `nodes` nodes in the reverse Cuthill–McKee order of the graph whose
/// undirected edges are `edges`: `slot[node]` is a permutation of `0..nodes`.
pub fn reverse_cuthill_mckee(nodes: usize, edges: impl Iterator<Item = (usize, usize)>) -> Vec<usize> {
    let mut neighbours = vec![Vec::new(); nodes];
    for (a, b) in edges {
        if a != b && a < nodes && b < nodes {
            neighbours[a].push(b);
            neighbours[b].push(a);
        }
    }
    for list in &mut neighbours {
        list.sort_unstable();
        list.dedup();
    }
    let degree = |n: usize| neighbours[n].len();
    let mut order = Vec::with_capacity(nodes);
    let mut seen = vec![false; nodes];
    // Each connected part starts from its node of least degree (a cheap stand-in for a
    // peripheral node).
    let mut starts: Vec<usize> = (0..nodes).collect();
    starts.sort_by_key(|&n| (degree(n), n));
    for start in starts {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            order.push(n);
            let mut next: Vec<usize> = neighbours[n].iter().copied().filter(|&m| !seen[m]).collect();
            next.sort_by_key(|&m| (degree(m), m));
            for m in next {
                seen[m] = true;
                queue.push_back(m);
            }
        }
    }
    let mut slot = vec![0; nodes];
    for (position, &node) in order.iter().rev().enumerate() {
        slot[node] = position;
    }
    slot
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest distance from the diagonal of any edge under `slot`.
    fn bandwidth(slot: &[usize], edges: &[(usize, usize)]) -> usize {
        edges.iter().map(|&(a, b)| slot[a].abs_diff(slot[b])).max().unwrap_or(0)
    }

    #[test]
    fn three_laps_tied_by_loops_become_a_narrow_band() {
        // Three laps of 50 keyframes in a chain, each keyframe tied to the same place a lap before.
        let lap = 50;
        let mut edges: Vec<(usize, usize)> = (1..3 * lap).map(|i| (i - 1, i)).collect();
        edges.extend((lap..3 * lap).map(|i| (i - lap, i)));
        let natural: Vec<usize> = (0..3 * lap).collect();
        let slot = reverse_cuthill_mckee(3 * lap, edges.iter().copied());
        let mut sorted = slot.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, natural, "a permutation");
        assert_eq!(bandwidth(&natural, &edges), lap);
        assert!(bandwidth(&slot, &edges) <= 10, "bandwidth {}", bandwidth(&slot, &edges));
    }

    #[test]
    fn disconnected_nodes_still_get_a_slot() {
        let slot = reverse_cuthill_mckee(4, [(0, 1)].into_iter());
        let mut sorted = slot.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2, 3]);
    }
}
