package backup

import (
	"expvar"
	"sync/atomic"
)

// Counters are this process's backup and restore counters, under rqlite's names. /debug/vars shows the
// uploader and downloader maps always, even with neither feature configured (tools poll them), and the
// store's share through StoreVars; /metrics has the same as Prometheus series.
type Counters struct {
	UploadsOK, UploadsFail, UploadsSkipped, UploadsSkippedID, SumGetFail atomic.Int64
	TotalUploadBytes, LastUploadBytes, LastUploadUnix                    atomic.Int64
	ProviderChecks, ProviderProvides, ProviderProvidesFail               atomic.Int64

	DownloadsOK, DownloadsFail, DownloadBytes             atomic.Int64
	AutoRestores, AutoRestoresSkipped, AutoRestoresFailed atomic.Int64
}

// Stats is the process's one set of counters.
var Stats Counters

func init() {
	expvar.Publish("uploader", expvar.Func(func() any {
		return map[string]int64{
			"num_uploads_ok":         Stats.UploadsOK.Load(),
			"num_uploads_fail":       Stats.UploadsFail.Load(),
			"num_uploads_skipped":    Stats.UploadsSkipped.Load(),
			"num_uploads_skipped_id": Stats.UploadsSkippedID.Load(),
			"num_sum_get_fail":       Stats.SumGetFail.Load(),
			"total_upload_bytes":     Stats.TotalUploadBytes.Load(),
			"last_upload_bytes":      Stats.LastUploadBytes.Load(),
		}
	}))
	expvar.Publish("downloader", expvar.Func(func() any {
		return map[string]int64{
			"num_downloads_ok":   Stats.DownloadsOK.Load(),
			"num_downloads_fail": Stats.DownloadsFail.Load(),
			"download_bytes":     Stats.DownloadBytes.Load(),
		}
	}))
}

// StoreVars are the counters rqlite keeps in /debug/vars' store map: backups made for the uploader, and
// automatic restores.
func StoreVars() map[string]int64 {
	return map[string]int64{
		"num_provider_checks":        Stats.ProviderChecks.Load(),
		"num_provider_provides":      Stats.ProviderProvides.Load(),
		"num_provider_provides_fail": Stats.ProviderProvidesFail.Load(),
		"num_auto_restores":          Stats.AutoRestores.Load(),
		"num_auto_restores_skipped":  Stats.AutoRestoresSkipped.Load(),
		"num_auto_restores_failed":   Stats.AutoRestoresFailed.Load(),
	}
}
