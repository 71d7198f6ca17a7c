package train

import (
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/gotrain/gotrain/internal/atomicfile"
)

// PlotLoss draws the training loss (and the eval loss where measured) per
// step into an SVG or PNG file, chosen by path's extension.
func PlotLoss(metrics []StepInfo, path string) error {
	p := plot.New()
	p.Title.Text = "LoRA finetuning"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "mean token cross-entropy"
	var trainXY, evalXY plotter.XYs
	for _, m := range metrics {
		trainXY = append(trainXY, plotter.XY{X: float64(m.Step), Y: m.Loss})
		if m.EvalLoss != nil {
			evalXY = append(evalXY, plotter.XY{X: float64(m.Step), Y: *m.EvalLoss})
		}
	}
	if len(trainXY) == 0 {
		return fmt.Errorf("train: no metrics to plot")
	}
	l, err := plotter.NewLine(trainXY)
	if err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	p.Add(l)
	p.Legend.Add("train", l)
	if len(evalXY) > 0 {
		el, pts, err := plotter.NewLinePoints(evalXY)
		if err != nil {
			return fmt.Errorf("train: plot: %w", err)
		}
		el.Color = color.RGBA{R: 200, A: 255}
		pts.Color = el.Color
		el.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		p.Add(el, pts)
		p.Legend.Add("eval", el, pts)
	}
	p.Add(plotter.NewGrid())
	// Rendered first, then written atomically (plot.Save writes in place).
	wt, err := p.WriterTo(6*vg.Inch, 4*vg.Inch, strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), "."))
	if err != nil {
		return fmt.Errorf("train: plot %s: %w", path, err)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { _, err := wt.WriteTo(w); return err }); err != nil {
		return fmt.Errorf("train: plot %s: %w", path, err)
	}
	return nil
}
