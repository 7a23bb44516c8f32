package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rmbd/rmbd/node"
)

// export names the metric of a stats frame value that is not one of the
// node's counters (those are rmbd_<name>_total, with node.Counter.Help).
type export struct {
	metric string
	kind   prometheus.ValueType
	help   string
	value  func(node.Stats) float64 // nil: the frame's integer
}

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// exports maps stats frame names to metrics. newCollector refuses a node
// whose stats frame has a name missing here.
var exports = map[string]export{
	"peers":                 {"rmbd_peers", gauge, "Push targets and members this node syncs with.", nil},
	"ticks":                 {"rmbd_sync_rounds_total", counter, "Gossip rounds run.", nil},
	"sync_frames_sent":      {"rmbd_sync_frames_sent_total", counter, "Sync frames sent to peers.", nil},
	"sync_bytes_sent":       {"rmbd_sync_sent_bytes_total", counter, "Bytes of sync frames sent to peers.", nil},
	"sync_rows_sent":        {"rmbd_sync_rows_sent_total", counter, "Rows sent to peers.", nil},
	"sync_frames_resent":    {"rmbd_sync_frames_resent_total", counter, "Sync frames sent again: not acknowledged in time.", nil},
	"peers_pruned":          {"rmbd_peers_pruned_total", counter, "Static peers removed: they stopped acknowledging or never answered their challenge.", nil},
	"peers_evicted":         {"rmbd_peers_evicted_total", counter, "Peers put out of a full table to make room: they never acknowledged anything.", nil},
	"acks":                  {"rmbd_sync_acks_total", counter, "Acknowledgements received from peers.", nil},
	"stray_acks":            {"rmbd_sync_stray_acks_total", counter, "Acknowledgements of nothing sent: duplicate, late or forged.", nil},
	"filter_bytes":          {"rmbd_filter_bytes", gauge, "Bytes the filter's bits take.", nil},
	"set_bits":              {"rmbd_filter_set_bit_positions", gauge, "Bits set in the filter (refreshed about once a second).", nil},
	"total_bits":            {"rmbd_filter_bit_positions", gauge, "Bits in the filter, set or not.", nil},
	"estimated_keys":        {"rmbd_filter_estimated_keys", gauge, "Distinct keys the filter holds, estimated from its bits (refreshed about once a second).", func(s node.Stats) float64 { return s.EstimatedKeys }},
	"estimated_fp_ppm":      {"rmbd_filter_estimated_fp_ratio", gauge, "Chance that a key never added answers true now, estimated from the filter's bits.", func(s node.Stats) float64 { return s.EstimatedFPRate }},
	"log_fsyncs":            {"rmbd_log_fsyncs_total", counter, "Times the add log was fsynced (--data-dir).", nil},
	"log_bytes":             {"rmbd_log_written_bytes_total", counter, "Bytes written to the add log (--data-dir).", nil},
	"checkpoints":           {"rmbd_checkpoints_total", counter, "Checkpoints of the filter written (--data-dir).", nil},
	"checkpoint_bytes":      {"rmbd_checkpoint_written_bytes_total", counter, "Bytes of checkpoints written (--data-dir).", nil},
	"checkpoint_rows":       {"rmbd_checkpoint_rows_total", counter, "Rows written in checkpoints (--data-dir).", nil},
	"log_unwritable":        {"rmbd_log_unwritable_total", counter, "Times a filter's data directory became unwritable (a full disk, an I/O error): adds to keep were refused until it could be written again.", nil},
	"unwritable_filters":    {"rmbd_unwritable_filters", gauge, "Filters whose data directory cannot be written now: they refuse adds to keep, and the node is not ready, until it can.", nil},
	"cluster_authenticated": {"rmbd_cluster_authenticated", gauge, "1 if the node has a cluster key: its frames to other nodes are sealed.", nil},
	"tcp_open_conns":        {"rmbd_tcp_open_connections", gauge, "TCP connections open now.", nil},
	"udp_kernel_drops":      {"rmbd_udp_kernel_drops_total", counter, "Datagrams the kernel dropped on the node's UDP sockets: queue full, or source blocked.", nil},
	"udp_blocked_now":       {"rmbd_udp_blocked_sources", gauge, "Flooding sources whose datagrams the kernel drops now.", nil},
	"buffer_bytes_lent":     {"rmbd_buffer_lent_bytes", gauge, "Bytes of frame and reply buffers TCP connections hold now (under --max-buffer-bytes).", nil},
	"buffer_bytes_peak":     {"rmbd_buffer_peak_bytes", gauge, "The most bytes of buffers TCP connections ever held at once.", nil},
	"buffer_refusals":       {"rmbd_buffer_refusals_total", counter, "Buffer requests refused: --max-buffer-bytes was reached.", nil},
	"capacity":              {"rmbd_filter_capacity_keys", gauge, "Keys the filter was sized for (0: the classic filter).", nil},
	"target_fp_ppm":         {"rmbd_filter_target_fp_ratio", gauge, "False-positive rate the filter was sized for at capacity.", func(s node.Stats) float64 { return s.TargetFPRate }},
	"over_capacity":         {"rmbd_filter_over_capacity", gauge, "1 if the filter holds more keys than it was sized for.", nil},
	"fp_over_target":        {"rmbd_filter_fp_over_target", gauge, "1 if the estimated false-positive rate is over twice the target.", nil},
	"ready":                 {"rmbd_ready", gauge, "1 if the node is ready: serving, and with --join, joined and filled from the cluster.", nil},
	"named_filters":         {"rmbd_named_filters", gauge, "Named filters the node holds (besides the default; bounded by --max-filters).", nil},
	"clock_offset_us": {"rmbd_clock_offset_seconds", gauge, "This node's clock less the cluster's (the median of the members'), measured on memberlist's pings. Past half a slice of a windowed filter, adds to it are refused and the node is not ready.",
		func(s node.Stats) float64 { return s.ClockOffset.Seconds() }},
	"placed_filling": {"rmbd_placed_filters_filling", gauge, "Placed filters this node came to own and holds, their rows still coming from a member that held them: it answers for them once they came.", nil},
	"placed_leaving": {"rmbd_placed_filters_leaving", gauge, "Placed filters this node no longer owns and keeps, answering, for --handoff-grace.", nil},
}
