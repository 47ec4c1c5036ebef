package train

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
)

// shadowEngine stands in for a GPU: it trains its own copy of the model (the "device" weights
// and optimiser state), which reach the run's model only through Pull and leave it only through
// Push. A run that forgets to pull before a checkpoint, or to push after loading weights, gets
// different figures from the CPU's.
type shadowEngine struct {
	host, dev nn.Model
	hostOpt   *nn.Adam
	devOpt    *nn.Adam
	runner    nn.Runner
	pushes    int
}

func newShadowEngine(m nn.Model, opt *nn.Adam) (engine, error) {
	impl, err := blas.Load("") // the run's BLAS (smallConfig's), for the same rounding
	if err != nil {
		return nil, err
	}
	impl.SetThreads(2)
	dev, err := nn.NewModel(nn.NewCPU(impl, 2), m.Config(), nn.NewRNG(99)) // other weights until Push
	if err != nil {
		return nil, err
	}
	devOpt, err := nn.NewAdam(opt.Config())
	if err != nil {
		return nil, err
	}
	return &shadowEngine{host: m, dev: dev, hostOpt: opt, devOpt: devOpt}, nil
}

func (e *shadowEngine) Step(in *nn.Input, loss nn.Loss, mode nn.Mode, rng *nn.RNG) (nn.StepResult, error) {
	if e.pushes == 0 {
		return nn.StepResult{}, errors.New("shadow engine: step before the first Push")
	}
	return e.runner.Step(e.dev, in, loss, mode, rng)
}

func (e *shadowEngine) Update() error { return e.devOpt.Step(e.dev.Params()) }

func (e *shadowEngine) Push() error {
	e.pushes++
	copyModel(e.dev, e.host)
	return e.devOpt.SetState(e.hostOpt.State(), e.dev.Params())
}

func (e *shadowEngine) Pull() error {
	copyModel(e.host, e.dev)
	return e.hostOpt.SetState(e.devOpt.State(), e.host.Params())
}

func (e *shadowEngine) Name() string { return "shadow" }
func (e *shadowEngine) Close() error { return nil }

func copyModel(dst, src nn.Model) {
	d, s := dst.Params(), src.Params()
	for i := range d {
		copy(d[i].Data(), s[i].Data())
		if s[i].Frozen {
			d[i].Freeze()
		}
	}
}

// TestDeviceEngine trains on the shadow engine, straight and interrupted then resumed, and
// requires the CPU run's figures bit for bit: the trainer moves weights and optimiser state
// between host and device at the right moments.
func TestDeviceEngine(t *testing.T) {
	for _, model := range []string{"lstm", "cnn"} {
		t.Run(model, func(t *testing.T) {
			cfg := smallConfig(model)
			if model == "cnn" { // the best epoch is not the last: the test split needs the pushed best weights
				cfg.LR, cfg.Epochs = 0.02, 4
			}
			cfg.RunDir = filepath.Join(t.TempDir(), "cpu")
			want, err := Run(context.Background(), cfg, quietHooks())
			if err != nil {
				t.Fatal(err)
			}
			shadow := Options{newEngine: newShadowEngine}
			cfg.RunDir = filepath.Join(t.TempDir(), "device")
			got, err := RunWith(context.Background(), cfg, quietHooks(), shadow)
			if err != nil {
				t.Fatal(err)
			}
			sameFigures(t, want, got)
			if model == "cnn" && want.Final.BestEpoch == len(want.Epochs) {
				t.Errorf("the cnn run's best epoch is its last (%d): the check of the push after loading the best weights is void", want.Final.BestEpoch)
			}

			cfg.RunDir = filepath.Join(t.TempDir(), "device-resumed")
			ctx, cancel := context.WithCancel(context.Background())
			stopped := quietHooks()
			stopped.Meter = &cancelAfter{n: 11, cancel: cancel}
			_, err = RunWith(ctx, cfg, stopped, shadow)
			cancel()
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("got %v, want ErrInterrupted", err)
			}
			got, err = ResumeWith(context.Background(), cfg.RunDir, quietHooks(), shadow)
			if err != nil {
				t.Fatal(err)
			}
			sameFigures(t, want, got)
		})
	}
}
