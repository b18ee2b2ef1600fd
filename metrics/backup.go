package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlite/raftlite/backup"
)

// backupCollector reports the process's automatic backup and restore counters (package backup), zero
// where the features are off.
type backupCollector struct {
	metrics []backupMetric
}

type backupMetric struct {
	desc   *prometheus.Desc
	kind   prometheus.ValueType
	labels []string
	value  *atomic.Int64
}

func newBackupCollector() *backupCollector {
	c := &backupCollector{}
	s := &backup.Stats
	uploads := prometheus.NewDesc("raftlite_backup_uploads_total",
		"Automatic backup intervals on the leader, by outcome: uploaded, failed, skipped_unchanged (no write since the last backup), skipped_present (the storage holds this data already).",
		[]string{"result"}, nil)
	add := func(desc *prometheus.Desc, kind prometheus.ValueType, v *atomic.Int64, labels ...string) {
		c.metrics = append(c.metrics, backupMetric{desc, kind, labels, v})
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	add(uploads, counter, &s.UploadsOK, "uploaded")
	add(uploads, counter, &s.UploadsFail, "failed")
	add(uploads, counter, &s.UploadsSkipped, "skipped_unchanged")
	add(uploads, counter, &s.UploadsSkippedID, "skipped_present")
	add(prometheus.NewDesc("raftlite_backup_upload_bytes_total", "Bytes of automatic backups uploaded (after compression).", nil, nil), counter, &s.TotalUploadBytes)
	add(prometheus.NewDesc("raftlite_backup_last_upload_bytes", "Size of the last automatic backup uploaded (after compression).", nil, nil), gauge, &s.LastUploadBytes)
	add(prometheus.NewDesc("raftlite_backup_last_upload_timestamp_seconds", "When the last automatic backup finished uploading (Unix time; 0: none yet). Alert on its age.", nil, nil), gauge, &s.LastUploadUnix)
	add(prometheus.NewDesc("raftlite_backup_file_failures_total", "Failed attempts to make a backup file (each is retried).", nil, nil), counter, &s.ProviderProvidesFail)
	downloads := prometheus.NewDesc("raftlite_restore_downloads_total", "Downloads of a backup for -auto-restore, by outcome.", []string{"result"}, nil)
	add(downloads, counter, &s.DownloadsOK, "ok")
	add(downloads, counter, &s.DownloadsFail, "failed")
	add(prometheus.NewDesc("raftlite_restore_download_bytes_total", "Bytes downloaded for -auto-restore (as stored, compressed or not).", nil, nil), counter, &s.DownloadBytes)
	restores := prometheus.NewDesc("raftlite_restores_total", "Automatic restores, by outcome: restored, skipped (data present, or another node restored), failed.", []string{"result"}, nil)
	add(restores, counter, &s.AutoRestores, "restored")
	add(restores, counter, &s.AutoRestoresSkipped, "skipped")
	add(restores, counter, &s.AutoRestoresFailed, "failed")
	return c
}

func (c *backupCollector) Describe(ch chan<- *prometheus.Desc) {
	seen := map[*prometheus.Desc]bool{}
	for _, m := range c.metrics {
		if !seen[m.desc] {
			seen[m.desc] = true
			ch <- m.desc
		}
	}
}

func (c *backupCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.value.Load()), m.labels...)
	}
}
