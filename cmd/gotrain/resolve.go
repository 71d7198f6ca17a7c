package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/gotrain/gotrain/hub"
)

// resolveModel turns a --base, --adapter or --init-adapter value (a directory,
// a Hugging Face repo id with an optional @revision, or an alias such as
// qwen2.5-0.5b) into a local directory, downloading into the Hugging Face
// cache if needed. An empty ref stays empty, so optional flags pass through.
func resolveModel(ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	if st, err := os.Stat(ref); err == nil && st.IsDir() {
		return ref, nil
	}
	return resolveWith(ref, hub.Options{})
}

// resolveFlags resolves each non-empty flag value in place (see resolveModel),
// so that a command can take --base qwen2.5-0.5b or --adapter ORG/NAME@REV.
func resolveFlags(refs ...*string) error {
	for _, ref := range refs {
		dir, err := resolveModel(*ref)
		if err != nil {
			return err
		}
		*ref = dir
	}
	return nil
}

// baseModelName is what an adapter trained on ref records as
// base_model_name_or_path: the repo id for a Hub reference or alias (so PEFT
// can load the base by name), the path itself for a directory.
func baseModelName(ref string) string {
	if st, err := os.Stat(ref); err == nil && st.IsDir() {
		return ref
	}
	if repo, _, err := hub.ParseRef(ref); err == nil {
		return repo
	}
	return ref
}

// resolveWith resolves ref with opt, reporting download progress on stderr;
// Ctrl-C cancels the download and leaves it resumable.
func resolveWith(ref string, opt hub.Options) (string, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep := newDownloadReporter(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
	opt.Progress = rep.update
	dir, err := hub.Resolve(ctx, ref, opt)
	rep.finish()
	if err != nil {
		return "", err
	}
	if rep.files > 0 {
		fmt.Fprintf(os.Stderr, "%s: downloaded %d files to %s\n", ref, rep.files, dir)
	}
	return dir, nil
}

// downloadReporter shows per-file download progress: a progress bar on a
// terminal, otherwise plain lines (at the start and end of each file and at
// most every 10 s between), because a bar's \r frames make a mess of log files.
type downloadReporter struct {
	w     io.Writer
	tty   bool
	bar   *progressbar.ProgressBar
	file  string
	files int // files started
	last  time.Time
	begin time.Time
}

func newDownloadReporter(w io.Writer, tty bool) *downloadReporter {
	return &downloadReporter{w: w, tty: tty}
}

// update is a hub.Options.Progress function.
func (r *downloadReporter) update(file string, done, total int64) {
	if file != r.file {
		r.finish()
		r.file, r.files, r.begin, r.last = file, r.files+1, time.Now(), time.Now()
		if r.tty {
			r.bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(r.w),
				progressbar.OptionSetDescription(file),
				progressbar.OptionShowBytes(true),
				progressbar.OptionShowTotalBytes(true),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionFullWidth())
		} else if total < 0 || total >= 1<<20 {
			fmt.Fprintf(r.w, "download %s: %s\n", file, byteCount(done, total))
		}
	}
	if r.bar != nil {
		r.bar.Set64(done)
		return
	}
	if done == total || time.Since(r.last) >= 10*time.Second {
		r.last = time.Now()
		rate := float64(done) / max(time.Since(r.begin).Seconds(), 1e-3) / (1 << 20)
		fmt.Fprintf(r.w, "download %s: %s  %.1f MiB/s\n", file, byteCount(done, total), rate)
		if done == total {
			r.file = "" // a resumed retry of the same file starts a new line
		}
	}
}

// finish closes the current bar, if any.
func (r *downloadReporter) finish() {
	if r.bar != nil {
		if !r.bar.IsFinished() {
			r.bar.Exit()
		}
		fmt.Fprintln(r.w)
	}
	r.bar = nil
}

// byteCount formats done of total bytes ("1.2 of 3.0 GiB") in the unit that suits the larger.
func byteCount(done, total int64) string {
	unit, div := "B", 1.0
	for _, u := range []string{"KiB", "MiB", "GiB"} {
		if float64(max(done, total)) < div*1024 {
			break
		}
		unit, div = u, div*1024
	}
	if total < 0 {
		return fmt.Sprintf("%.1f %s", float64(done)/div, unit)
	}
	return fmt.Sprintf("%.1f of %.1f %s", float64(done)/div, float64(total)/div, unit)
}

// runDownload is "gotrain download REF...": fetch models or adapters into the
// Hugging Face cache and print each snapshot directory on stdout.
func runDownload(args []string) error {
	fs := newFlags("download", "[flags] REF... (REF: ORG/NAME[@REVISION], an alias such as qwen2.5-0.5b, or a directory)")
	cache := fs.String("cache", "", "cache directory (default $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)")
	endpoint := fs.String("endpoint", "", "Hub URL (default $HF_ENDPOINT, else https://huggingface.co)")
	offline := fs.Bool("offline", false, "only look in the cache, never download (also $HF_HUB_OFFLINE=1)")
	include := fs.String("include", "", "comma-separated file patterns to fetch (default: "+strings.Join(hub.DefaultFiles, ",")+")")
	aliases := fs.Bool("aliases", false, "list the short model names and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *aliases {
		m := hub.Aliases()
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			fmt.Printf("%-14s %s\n", k, m[k])
		}
		return nil
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("no model reference given")
	}
	opt := hub.Options{Cache: *cache, Endpoint: *endpoint, Offline: *offline}
	if *include != "" {
		for _, p := range strings.Split(*include, ",") {
			if p = strings.TrimSpace(p); p != "" {
				opt.Files = append(opt.Files, p)
			}
		}
	}
	for _, ref := range fs.Args() {
		dir, err := resolveWith(ref, opt)
		if err != nil {
			return err
		}
		fmt.Println(dir)
	}
	return nil
}
