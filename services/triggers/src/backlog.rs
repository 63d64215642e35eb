//! The delivery backlog per endpoint, as `webhook_deliveries_pending_by_endpoint{endpoint}`, with
//! its label values bounded: a label per endpoint would grow with the tenants' endpoints.
//!
//! Each refresh, the [`TOP_ENDPOINTS`] endpoints with the most pending deliveries have a series
//! of their own (`endpoint` = the endpoint's id); every other endpoint's deliveries are summed
//! under `endpoint="other"`. An endpoint that leaves the top reads 0 (the exporter cannot drop a
//! series). So that the zeros left behind stay bounded too, at most [`MAX_ENDPOINT_SERIES`]
//! endpoints ever get a series in a process's life; past that, an endpoint new to the top is
//! counted under `other` until the process restarts.

use std::collections::HashSet;

use uuid::Uuid;

/// The endpoints with the largest backlog that have a series of their own.
pub const TOP_ENDPOINTS: usize = 10;
/// The most endpoints that ever have a series of their own, per process.
pub const MAX_ENDPOINT_SERIES: usize = 100;
/// The label value of every endpoint without a series of its own.
pub const OTHER: &str = "other";

/// Which endpoints have a series, and which of those read more than 0 at the last refresh.
#[derive(Debug, Default)]
pub struct BacklogLabels {
    labelled: HashSet<Uuid>,
    shown: HashSet<Uuid>,
}

impl BacklogLabels {
    /// The gauge's values now, by label, from the largest backlogs (`top`, at most
    /// [`TOP_ENDPOINTS`]) and the total over every endpoint: each top endpoint that has or may
    /// get a series, 0 for those shown before and no longer in the top, and `other` for the
    /// rest.
    pub fn values(&mut self, top: &[(Uuid, i64)], total: i64) -> Vec<(String, i64)> {
        let mut values = Vec::with_capacity(top.len() + self.shown.len() + 1);
        let mut shown = HashSet::with_capacity(top.len());
        let mut labelled_sum = 0;
        for &(endpoint, pending) in top.iter().take(TOP_ENDPOINTS) {
            let may =
                self.labelled.contains(&endpoint) || self.labelled.len() < MAX_ENDPOINT_SERIES;
            if !may {
                continue;
            }
            self.labelled.insert(endpoint);
            shown.insert(endpoint);
            labelled_sum += pending;
            values.push((endpoint.to_string(), pending));
        }
        for gone in self.shown.difference(&shown) {
            values.push((gone.to_string(), 0));
        }
        self.shown = shown;
        values.push((OTHER.to_owned(), (total - labelled_sum).max(0)));
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(count: usize) -> Vec<Uuid> {
        (0..count).map(|_| Uuid::now_v7()).collect()
    }

    fn value(values: &[(String, i64)], label: &str) -> Option<i64> {
        values
            .iter()
            .find(|(name, _)| name == label)
            .map(|(_, value)| *value)
    }

    #[test]
    fn the_top_endpoints_have_their_own_series_and_the_rest_sum_under_other() {
        let ids = endpoints(2);
        let mut labels = BacklogLabels::default();
        let values = labels.values(&[(ids[0], 30), (ids[1], 5)], 40);
        assert_eq!(value(&values, &ids[0].to_string()), Some(30));
        assert_eq!(value(&values, &ids[1].to_string()), Some(5));
        assert_eq!(value(&values, OTHER), Some(5));
        assert_eq!(values.len(), 3);
    }

    #[test]
    fn only_the_top_count_and_an_endpoint_leaving_it_reads_zero() {
        let ids = endpoints(TOP_ENDPOINTS + 1);
        let backlog: Vec<_> = ids.iter().map(|&id| (id, 2)).collect();
        let mut labels = BacklogLabels::default();
        let values = labels.values(&backlog, 2 * ids.len() as i64 + 7);
        assert_eq!(values.len(), TOP_ENDPOINTS + 1, "the top and other");
        assert_eq!(value(&values, &ids[TOP_ENDPOINTS].to_string()), None);
        assert_eq!(value(&values, OTHER), Some(2 + 7));

        let values = labels.values(&[(ids[1], 4)], 4);
        assert_eq!(value(&values, &ids[1].to_string()), Some(4));
        assert_eq!(value(&values, &ids[0].to_string()), Some(0));
        assert_eq!(value(&values, OTHER), Some(0));
        let values = labels.values(&[(ids[1], 4)], 4);
        assert_eq!(values.len(), 2, "a zero is set once: {values:?}");
    }

    #[test]
    fn past_the_series_bound_a_new_endpoint_counts_under_other() {
        let mut labels = BacklogLabels::default();
        let mut series = HashSet::new();
        for _ in 0..MAX_ENDPOINT_SERIES / TOP_ENDPOINTS + 2 {
            let backlog: Vec<_> = endpoints(TOP_ENDPOINTS)
                .into_iter()
                .map(|id| (id, 1))
                .collect();
            for (label, _) in labels.values(&backlog, TOP_ENDPOINTS as i64) {
                series.insert(label);
            }
        }
        assert_eq!(series.len(), MAX_ENDPOINT_SERIES + 1, "the bound and other");
        let late = endpoints(1)[0];
        let values = labels.values(&[(late, 3)], 3);
        assert_eq!(value(&values, &late.to_string()), None);
        assert_eq!(value(&values, OTHER), Some(3));
    }
}
