package train

// Data-parallel training: what a run does with a Comm of more than one rank. Every rank reads
// the same data, builds the same model from the same seed and draws the same global batches
// (data.BucketBatches); each trains on its contiguous share of every batch's reviews, and
// allreduces sum the ranks' gradients, weighted by their shares, into the gradient of the
// global batch's mean loss (in a few buckets, the first ones while the backward pass still
// runs: overlap.go), then the batch's loss sum and counts. Clipping and Adam then run on every
// rank on the same numbers. Validation and test split the evaluation
// batches across the ranks and sum their tallies. Only rank 0 writes the run directory.
//
// Before any work the ranks check that they agree (startRanks: the settings and the build;
// checkSameStart: the data, the vocabulary and the initial weights). A checkpoint holds every
// rank's dropout generator (saveRNGs); a resume reads the run directory on rank 0, which gives
// the others the configuration and the checkpoint (resumePlan, restoreLast).
//
// With one rank none of this runs: the trainer takes exactly the steps it takes without a Comm.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/gpu"
)

// batchSums are one training batch's figures: summed over its examples, so that ranks can add
// theirs.
type batchSums struct {
	lossSum                  float64
	lossN, correct, labelled int
	tokens                   int64
}

// sumsOf are the figures of a batch that res ran on, of tokens real tokens (no labels: a rank's
// empty share).
func sumsOf(tokens int, labels []float32, res nn.StepResult) batchSums {
	if len(labels) == 0 {
		return batchSums{}
	}
	correct, labelled := countCorrect(res.Logits, labels)
	return batchSums{lossSum: res.Loss * float64(len(labels)), lossN: len(labels), correct: correct, labelled: labelled, tokens: int64(tokens)}
}

// add adds a batch's figures to the epoch's.
func (p *partialEpoch) add(b batchSums) {
	p.LossSum += b.lossSum
	p.LossN += b.lossN
	p.Correct += b.correct
	p.N += b.labelled
	p.Tokens += b.tokens
}

// saveBest writes the best checkpoint (rank 0).
func (t *trainer) saveBest(epoch int, validLoss float64) error {
	if !t.writes() {
		return nil
	}
	return saveBest(t.dir, t.model, epoch, validLoss)
}

// loadBest reads the best checkpoint's weights into the model: rank 0 from the run directory,
// which it broadcasts to the other ranks of a data-parallel run.
func (t *trainer) loadBest() error {
	if t.writes() {
		ck, err := openCheckpointDir(t.dir, BestDir)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if err := nn.LoadWeights(filepath.Join(ck, WeightsFile), t.model); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if t.parallel() {
		return t.broadcastWeights()
	}
	return nil
}

// interrupted says whether to stop before the next batch: on one rank when ctx is cancelled;
// on several, when a rank's ctx was cancelled at the last step's allreduce (so that every rank
// stops after the same batch).
func (t *trainer) interrupted(ctx context.Context) bool {
	if t.parallel() {
		return t.stopAll
	}
	return ctx.Err() != nil
}

// parallel reports whether the run has more than one rank.
func (t *trainer) parallel() bool { return t.comm.Size() > 1 }

// writes reports whether this rank writes the run directory and the log: rank 0.
func (t *trainer) writes() bool { return t.comm.Rank() == 0 }

// share is this rank's part of a global batch: a contiguous run of its reviews, the ranks'
// parts as equal as can be (empty when the batch has fewer reviews than there are ranks).
func share(batch []int, rank, size int) []int {
	lo, hi := len(batch)*rank/size, len(batch)*(rank+1)/size
	return batch[lo:hi]
}

// trainableParams are the parameters that get gradients, in the model's order.
func trainableParams(m nn.Model) []*nn.Param {
	var ps []*nn.Param
	for _, p := range m.Params() {
		if !p.Frozen && p.Grad != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// The figures that travel after the gradients in each step's allreduce.
const (
	slotLossSum = iota
	slotLossN
	slotCorrect
	slotLabelled
	slotTokens
	slotStop
	nSlots
)

// reducer returns the run's gradReducer (overlap.go), made on first use.
func (t *trainer) reducer() *gradReducer {
	if t.grads == nil {
		t.grads = newGradReducer(t.comm, trainableParams(t.model), t.bucketBytes)
	}
	return t.grads
}

// allreduceStep ends the sum of the ranks' gradients and figures of one step, after the
// backward pass, which ended at backwardEnd and took backwardSeconds (the gradients announced
// during it are in buckets already: see overlap.go). Each rank's gradient is of the mean loss
// over its own n reviews, so it enters the sum weighted by n/globalN (gradReducer.begin): the
// sum is the gradient of the mean over the global batch's globalN reviews. stop is this rank's
// wish to stop (an interrupt); the result says whether any rank wished it. On return b and the
// models' gradients are the global batch's on every rank.
func (t *trainer) allreduceStep(b *batchSums, stop bool, backwardEnd time.Time, backwardSeconds float64) (stopAll bool, err error) {
	if t.slots == nil {
		t.slots = make([]float32, nSlots)
	}
	slots := t.slots
	slots[slotLossSum] = float32(b.lossSum)
	slots[slotLossN] = float32(b.lossN)
	slots[slotCorrect] = float32(b.correct)
	slots[slotLabelled] = float32(b.labelled)
	slots[slotTokens] = float32(b.tokens)
	slots[slotStop] = 0
	if stop {
		slots[slotStop] = 1
	}
	red := t.reducer()
	began := time.Now()
	seconds, err := red.finish(slots)
	if err != nil {
		return false, err
	}
	t.reduced.add(red, seconds, time.Since(began).Seconds(), backwardEnd, backwardSeconds)
	*b = batchSums{lossSum: float64(slots[slotLossSum]), lossN: int(slots[slotLossN]), correct: int(slots[slotCorrect]),
		labelled: int(slots[slotLabelled]), tokens: int64(slots[slotTokens])}
	return slots[slotStop] > 0, nil
}

// dropoutRNG is the generator of rank's dropout masks, for rank > 0: rank 0 goes on with the
// run's generator (the one that initialised the weights), the others draw from generators of
// their own seeded from the run's seed and the rank, so that the ranks' masks are not the same
// and a run is repeatable for a given seed and number of ranks.
func dropoutRNG(seed uint64, rank int) *nn.RNG {
	return nn.NewRNG(data.NewSplitMix64(seed ^ (0x9e3779b97f4a7c15 * uint64(rank))).Next())
}

// startRanks begins a data-parallel run, before any work: the ranks check that they agree on
// the settings and the build, and that every rank gets reviews of a full batch; then rank 0
// says whether the run resumes from a checkpoint (resume is rank 0's answer on every rank).
func (t *trainer) startRanks(cfg Config, opts Options, resume bool) (bool, error) {
	build := opts.build
	if build == "" {
		build = buildID()
	}
	if err := agree(t.comm, append(settingFacts(SharedSettings(cfg)), fact{Name: "build", Value: build})); err != nil {
		return false, err
	}
	if size := t.comm.Size(); cfg.BatchSize < size {
		return false, &JobError{&ConfigError{Field: "batch_size", Value: cfg.BatchSize, Problem: fmt.Sprintf(
			"%d ranks share each batch, so rank %d would get none of a batch of %s: give a batch size of at least %d, or start fewer ranks",
			size, size-1, plural(cfg.BatchSize, "review"), size)}}
	}
	flag := []float32{0}
	if resume {
		flag[0] = 1
	}
	if err := t.comm.Broadcast(flag, 0); err != nil {
		return false, fmt.Errorf("train: starting the ranks: %w", err)
	}
	return flag[0] == 1, nil
}

// fact is one thing that the ranks must agree on: its name, its value (compared) and, when
// not the value, how a message shows it.
type fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Shown string `json:"shown,omitempty"`
}

func (f fact) String() string {
	switch {
	case f.Shown != "":
		return f.Shown
	case f.Value == "":
		return "not set"
	}
	return f.Value
}

// agree checks that every rank has rank 0's facts: rank 0 broadcasts its own, each rank
// compares, and what they found is gathered, so that every rank returns the same error (a
// JobError), naming each rank that differs and how.
func agree(c Comm, mine []fact) error {
	var msg []byte
	if c.Rank() == 0 {
		var err error
		if msg, err = json.Marshal(mine); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	msg, err := BroadcastBytes(c, msg, 0)
	if err != nil {
		return fmt.Errorf("train: comparing the ranks: %w", err)
	}
	var root []fact
	if err := json.Unmarshal(msg, &root); err != nil {
		return fmt.Errorf("train: comparing the ranks: rank 0's facts: %w", err)
	}
	theirs := map[string]fact{}
	for _, f := range root {
		theirs[f.Name] = f
	}
	var diffs []string
	seen := map[string]bool{}
	differ := func(mine, root fact) {
		diffs = append(diffs, fmt.Sprintf("rank %d's %s: %v (rank 0's: %v)", c.Rank(), mine.Name, mine, root))
	}
	for _, f := range mine {
		seen[f.Name] = true
		if r := theirs[f.Name]; r.Value != f.Value {
			r.Name = f.Name
			differ(f, r)
		}
	}
	for _, r := range root {
		if !seen[r.Name] && r.Value != "" {
			differ(fact{Name: r.Name}, r)
		}
	}
	all, err := gatherBytes(c, []byte(strings.Join(diffs, "\n")))
	if err != nil {
		return fmt.Errorf("train: comparing the ranks: %w", err)
	}
	var lines []string
	for _, b := range all {
		if len(b) > 0 {
			lines = append(lines, strings.Split(string(b), "\n")...)
		}
	}
	if len(lines) > 0 {
		return &JobError{fmt.Errorf("train: the ranks differ (every rank needs the same flags, data and build): %s", strings.Join(lines, "; "))}
	}
	return nil
}

// rankOwnSettings are the settings that may differ between ranks: where things are on a rank's
// machine (their contents are compared: the data and the feature cache by checksum, the word
// vectors through the initial weights) and how a rank computes (threads, BLAS).
var rankOwnSettings = map[string]bool{"data": true, "feature_cache": true, "encoder": true, "glove": true,
	"tensorboard": true, "threads": true, "blas": true}

// settingFacts are settings (name -> value) as facts, by name.
func settingFacts(settings map[string]string) []fact {
	var facts []fact
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		facts = append(facts, fact{Name: name, Value: settings[name]})
	}
	return facts
}

// SharedSettings are the settings of cfg that every rank of a data-parallel run must share: its
// fields, by their names in config.json, with their values as JSON, but for a rank's own (the
// paths on its machine, threads and BLAS).
func SharedSettings(cfg Config) map[string]string {
	b, err := json.Marshal(cfg)
	if err != nil {
		return map[string]string{"configuration": err.Error()}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return map[string]string{"configuration": err.Error()}
	}
	settings := map[string]string{}
	for name, v := range fields {
		if !rankOwnSettings[name] {
			settings[name] = string(v)
		}
	}
	return settings
}

// CheckRanksAgree checks that every rank of a job has rank 0's settings (name -> value; see
// SharedSettings). A difference is a JobError naming each rank that differs, the setting and
// both values, the same on every rank.
func CheckRanksAgree(c Comm, settings map[string]string) error {
	return agree(c, settingFacts(settings))
}

// buildID says which build of sentibench this is: its version, Go's, the platform and, when
// Go recorded it, the source revision.
func buildID() string {
	id := fmt.Sprintf("sentibench %s (%s, %s/%s", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = ", modified"
				}
			}
		}
		if rev != "" {
			id += ", revision " + rev + modified
		}
	}
	return id + ")"
}

// dataFacts are what the ranks' data must agree on: the number of reviews of each split, a
// checksum of the data as training sees them (dataChecksum), the vocabulary (word models) and
// the model's size.
func (t *trainer) dataFacts() []fact {
	ds := t.ds
	sum := ds.checksum()
	facts := []fact{
		{Name: "train reviews", Value: fmt.Sprint(len(ds.train))},
		{Name: "valid reviews", Value: fmt.Sprint(len(ds.valid))},
		{Name: "test reviews", Value: fmt.Sprint(len(ds.test))},
		{Name: "data checksum", Value: sum, Shown: fmt.Sprintf("%.16s (%s)", sum, t.cfg.Data)},
	}
	if ds.vocab != nil {
		h := sha256.New()
		for _, w := range ds.vocab.Tokens() {
			io.WriteString(h, w)
			h.Write([]byte{0})
		}
		v := hex.EncodeToString(h.Sum(nil))
		facts = append(facts, fact{Name: "vocabulary", Value: v, Shown: fmt.Sprintf("%s words, checksum %.16s", progress.FormatCount(int64(ds.vocab.Len())), v)})
	}
	return append(facts, fact{Name: "model size", Value: fmt.Sprintf("%d weights", countWeights(t.model))})
}

// checksum is a SHA-256 of the data as training sees them: the classes, the split, the labels
// and each review's input (word models: its token ids; the bigru: its feature cache's key,
// which hashes the texts and the encoder, or, recomputing the encoder, its word pieces and
// the encoder's weights).
func (ds *dataset) checksum() string {
	h := sha256.New()
	for _, c := range ds.classes {
		fmt.Fprintf(h, "class %q\n", c)
	}
	var b []byte
	ints := func(name string, v []int) {
		b = binary.LittleEndian.AppendUint64(b[:0], uint64(len(v)))
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, uint64(x))
		}
		io.WriteString(h, name)
		h.Write(b)
	}
	ints("train", ds.train)
	ints("valid", ds.valid)
	ints("test", ds.test)
	ints("labels", ds.labels)
	seqs := ds.ids
	switch {
	case ds.enc != nil && ds.enc.cache != nil:
		fmt.Fprintf(h, "features %s\n", ds.enc.cache.Meta().Key)
	case ds.enc != nil:
		fmt.Fprintf(h, "encoder %s\n", ds.enc.model.WeightsHash())
		seqs = ds.enc.ids
	}
	for _, s := range seqs {
		b = binary.LittleEndian.AppendUint32(b[:0], uint32(len(s)))
		for _, id := range s {
			b = binary.LittleEndian.AppendUint32(b, uint32(id))
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// countWeights counts a model's weights, frozen ones included.
func countWeights(m nn.Model) int {
	n := 0
	for _, p := range m.Params() {
		n += p.Size()
	}
	return n
}

// checkSameStart makes sure that every rank starts from the same data and rank 0's weights:
// the ranks compare their data (dataFacts), then their initial weights (broadcast from rank
// 0). Every rank gets the same error, naming the ranks that differ.
func (t *trainer) checkSameStart() error {
	if err := agree(t.comm, t.dataFacts()); err != nil {
		return err
	}
	mine := make([]float32, 0, countWeights(t.model))
	for _, p := range t.model.Params() {
		mine = append(mine, p.Data()...)
	}
	root := append([]float32(nil), mine...)
	if err := t.comm.Broadcast(root, 0); err != nil {
		return fmt.Errorf("train: comparing the ranks' weights: %w", err)
	}
	differs := make([]float32, t.comm.Size())
	for i := range mine {
		if math.Float32bits(mine[i]) != math.Float32bits(root[i]) {
			differs[t.comm.Rank()] = 1
			break
		}
	}
	if err := t.comm.AllreduceSum(differs); err != nil {
		return fmt.Errorf("train: comparing the ranks' weights: %w", err)
	}
	var errs []error
	for r, d := range differs {
		if d > 0 {
			errs = append(errs, fmt.Errorf("rank %d's initial weights differ from rank 0's", r))
		}
	}
	if len(errs) > 0 {
		return &JobError{fmt.Errorf("train: the ranks differ (same seed, vocabulary and word vectors on every rank?): %w", errors.Join(errs...))}
	}
	return nil
}

// loadData reads the run's data (loadDataset). The bigru's ranks take turns, rank 0 first:
// features.Build lets one process at a time into a feature cache, so the first rank on a
// machine builds it (or finds it built) and the others then read it.
func (t *trainer) loadData(ctx context.Context, cfg Config, vocabPath string, extraTrain []string, gdev *gpu.Device, hooks Hooks) (*dataset, error) {
	if !t.parallel() || cfg.Kind != nn.KindBiGRU || cfg.FeatureCache == NoFeatureCache {
		return loadDataset(ctx, cfg, vocabPath, extraTrain, gdev, hooks)
	}
	var ds *dataset
	for r := range t.comm.Size() {
		if r == t.comm.Rank() {
			var err error
			if ds, err = loadDataset(ctx, cfg, vocabPath, extraTrain, gdev, hooks); err != nil {
				return nil, err
			}
		}
		if err := t.comm.Barrier(); err != nil {
			return nil, fmt.Errorf("train: waiting for rank %d to read the data: %w", r, err)
		}
	}
	return ds, nil
}

// broadcastWeights gives every rank rank 0's weights (after rank 0 read the best checkpoint).
func (t *trainer) broadcastWeights() error {
	for _, p := range t.model.Params() {
		if err := t.comm.Broadcast(p.Data(), 0); err != nil {
			return fmt.Errorf("train: broadcasting %s: %w", p.Name, err)
		}
	}
	return nil
}

// evaluateShared evaluates a split on several ranks: each takes every size-th evaluation batch,
// and the tallies are summed.
func (t *trainer) evaluateShared(indices []int) (Metrics, error) {
	batches := data.EvalBatches(indices, t.ds.lengths, t.cfg.BatchSize)
	var mine [][]int
	for i := t.comm.Rank(); i < len(batches); i += t.comm.Size() {
		mine = append(mine, batches[i])
	}
	tally, err := evaluateBatches(t.eng, t.ds, mine, t.cfg.BatchSize)
	if err != nil {
		return Metrics{}, err
	}
	if err := tally.allreduce(t.comm); err != nil {
		return Metrics{}, err
	}
	return tally.Metrics(), nil
}

// allreduce sums the ranks' tallies (the loss sum in float32).
func (t *Tally) allreduce(c Comm) error {
	buf := []float32{float32(t.lossSum), float32(t.n), float32(t.correct)}
	for _, row := range t.confusion {
		for _, v := range row {
			buf = append(buf, float32(v))
		}
	}
	if err := c.AllreduceSum(buf); err != nil {
		return fmt.Errorf("train: allreduce of the evaluation: %w", err)
	}
	t.lossSum, t.n, t.correct = float64(buf[0]), int(buf[1]), int(buf[2])
	k := 3
	for _, row := range t.confusion {
		for j := range row {
			row[j] = int(buf[k])
			k++
		}
	}
	return nil
}

// allreduceTimes are an epoch's allreduces of the gradients.
type allreduceTimes struct {
	steps   int
	seconds float64 // the allreduces' own time (the wait for the slowest rank included)
	// exposed is the time the steps waited after their backward pass: packing what was not
	// announced, the allreduces still to run, copying the sums back.
	exposed float64
	bytes   int64 // per step, the step's figures aside
	// left[k] is the share of the backward pass still to run when bucket k was handed over,
	// summed over the steps.
	left []float64
}

// add counts a step's allreduces: red's buckets, the allreduces' time, the wait after the
// backward pass, which ended at backwardEnd after backwardSeconds.
func (a *allreduceTimes) add(red *gradReducer, seconds, exposed float64, backwardEnd time.Time, backwardSeconds float64) {
	a.steps++
	a.seconds += seconds
	a.exposed += exposed
	a.bytes = red.bytes()
	if len(a.left) != len(red.handed) {
		a.left = make([]float64, len(red.handed))
	}
	for k, at := range red.handed {
		if backwardSeconds > 0 {
			a.left[k] += min(max(backwardEnd.Sub(at).Seconds()/backwardSeconds, 0), 1)
		}
	}
}

// logAllreduce reports the epoch's allreduces after its line, and starts counting anew.
func (t *trainer) logAllreduce() {
	if !t.parallel() {
		return
	}
	r := t.reduced
	t.reduced = allreduceTimes{}
	steps := float64(max(r.steps, 1))
	left := make([]string, len(r.left))
	for k, l := range r.left {
		left[k] = fmt.Sprintf("%.0f%%", 100*l/steps)
	}
	fmt.Fprintf(t.hooks.Log, "Allreduce: %d steps, %.2f MB per step in %s, %.1f ms per step (waiting for the slowest rank included); the step waited %.1f ms after its backward pass; the buckets were handed over with %s of the backward pass left\n",
		r.steps, float64(r.bytes)/1e6, plural(len(r.left), "bucket"), 1000*r.seconds/steps, 1000*r.exposed/steps, strings.Join(left, ", "))
}

// saveRNGs puts the dropout generators' states in the trainer state before a checkpoint: this
// process's in ModelRNG; on a data-parallel run every rank's (gathered: rank 0's in ModelRNG,
// the others' in RankRNGs), so that a resume on as many ranks draws the masks that the run
// left alone would have drawn.
func (t *trainer) saveRNGs() error {
	mine, err := t.rng.MarshalBinary()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	t.st.ModelRNG, t.st.Ranks, t.st.RankRNGs = mine, 0, nil
	if !t.parallel() {
		return nil
	}
	all, err := gatherBytes(t.comm, mine)
	if err != nil {
		return fmt.Errorf("train: gathering the ranks' generators: %w", err)
	}
	t.st.ModelRNG, t.st.Ranks, t.st.RankRNGs = all[0], len(all), all[1:]
	return nil
}

// restoreRNG restores this rank's dropout generator from the checkpoint: on as many ranks as
// wrote it (one process included), each rank's own state, so the run goes on bit for bit. On
// another number of ranks rank 0 goes on with the run's generator (ModelRNG) and the other
// ranks start generators of their own, seeded by (seed, step, rank): the masks then differ
// from those of the run left alone, which rank 0 says.
func (t *trainer) restoreRNG() error {
	st, rank, size := t.st, t.comm.Rank(), t.comm.Size()
	saved := max(st.Ranks, 1)
	if saved != size {
		fmt.Fprintf(t.hooks.Log, "Note: resuming on %s a checkpoint written by %s: from here on the dropout masks differ from those of the run left alone, and the gradients are summed in another order (with dropout 0 the figures agree within float32 rounding, not bit for bit)\n",
			describeRanks(size), describeRanks(saved))
	}
	var err error
	switch {
	case rank == 0:
		err = t.rng.UnmarshalBinary(st.ModelRNG)
	case saved == size:
		err = t.rng.UnmarshalBinary(st.RankRNGs[rank-1])
	default:
		t.rng = dropoutRNG(t.cfg.Seed^(uint64(t.opt.Steps())*0xbf58476d1ce4e5b9), rank)
	}
	if err != nil {
		return fmt.Errorf("train: %s: rank %d's dropout generator: %w", t.dir, rank, err)
	}
	return nil
}

// restoreLast restores the last checkpoint: rank 0 reads it from the run directory and, on a
// data-parallel run, gives it to the other ranks (the run directory is rank 0's): the trainer
// state, the optimiser's state and the weights.
func (t *trainer) restoreLast() (*state, error) {
	var (
		st  *state
		err error
	)
	if t.writes() {
		if st, err = loadLast(t.dir, t.model, t.opt); err != nil {
			return nil, err
		}
	}
	if !t.parallel() {
		return st, nil
	}
	// The trainer state and the optimiser's step counts, as JSON.
	type sharedState struct {
		State     *state           `json:"state"`
		AdamSteps map[string]int64 `json:"adam_steps"`
	}
	adam := map[string]nn.AdamParamState{}
	var msg []byte
	if t.writes() {
		adam = t.opt.State()
		shared := sharedState{State: st, AdamSteps: map[string]int64{}}
		for name, s := range adam {
			shared.AdamSteps[name] = s.Step
		}
		if msg, err = json.Marshal(shared); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if msg, err = BroadcastBytes(t.comm, msg, 0); err != nil {
		return nil, fmt.Errorf("train: sharing the checkpoint: %w", err)
	}
	var shared sharedState
	if err := json.Unmarshal(msg, &shared); err != nil || shared.State == nil {
		return nil, fmt.Errorf("train: rank 0's checkpoint state: %v", err)
	}
	if err := shared.State.check(); err != nil {
		return nil, fmt.Errorf("train: rank 0's checkpoint state: %w", err)
	}
	// The optimiser's moments, parameter by parameter in the model's order.
	for _, p := range t.model.Params() {
		step, ok := shared.AdamSteps[p.Name]
		if !ok {
			continue
		}
		s, ok := adam[p.Name]
		if !ok { // another rank
			s = nn.AdamParamState{Step: step, ExpAvg: make([]float32, p.Size()), ExpAvgSq: make([]float32, p.Size())}
		}
		for _, buf := range [][]float32{s.ExpAvg, s.ExpAvgSq} {
			if err := t.comm.Broadcast(buf, 0); err != nil {
				return nil, fmt.Errorf("train: sharing the optimiser state of %s: %w", p.Name, err)
			}
		}
		adam[p.Name] = s
	}
	if !t.writes() {
		if err := t.opt.SetState(adam, t.model.Params()); err != nil {
			return nil, fmt.Errorf("train: rank 0's optimiser state: %w", err)
		}
	}
	if err := t.broadcastWeights(); err != nil {
		return nil, err
	}
	return shared.State, nil
}

// resumePlan is what rank 0 of a data-parallel resume tells the other ranks, which do not read
// the run directory: the run's configuration, or that there is nothing to resume, or why it
// cannot be resumed.
type resumePlan struct {
	Config   Config `json:"config"`
	Finished bool   `json:"finished,omitempty"`
	Err      string `json:"error,omitempty"`
}

// sendPlan broadcasts rank 0's plan (rank 0).
func sendPlan(c Comm, p resumePlan) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if _, err := BroadcastBytes(c, b, 0); err != nil {
		return fmt.Errorf("train: telling the ranks how to resume: %w", err)
	}
	return nil
}

// receivePlan is sendPlan on the other ranks.
func receivePlan(c Comm) (resumePlan, error) {
	var p resumePlan
	b, err := BroadcastBytes(c, nil, 0)
	if err != nil {
		return p, fmt.Errorf("train: waiting for rank 0 to resume the run: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("train: rank 0's plan: %w", err)
	}
	return p, nil
}

// resumeOtherRank is ResumeWith on a rank other than 0 of a data-parallel run: it resumes as
// rank 0 says, from rank 0's configuration and checkpoint.
func resumeOtherRank(ctx context.Context, dir string, hooks Hooks, opts Options) (*Result, error) {
	hooks.fill()
	plan, err := receivePlan(opts.Comm)
	if err != nil {
		return nil, err
	}
	switch {
	case plan.Err != "":
		return nil, &JobError{fmt.Errorf("train: rank 0 could not resume the run: %s", plan.Err)}
	case plan.Finished:
		return &Result{RunDir: dir}, nil
	}
	cfg := plan.Config
	cfg.RunDir = dir
	if opts.Resume.Threads > 0 { // this rank's own
		cfg.Threads = opts.Resume.Threads
	}
	t, err := newTrainer(ctx, cfg, hooks, opts, true)
	if err != nil {
		return nil, err
	}
	defer t.close()
	return t.run(ctx)
}

// describeRanks names a run's processes: "one process" or "N ranks".
func describeRanks(n int) string {
	if n == 1 {
		return "one process"
	}
	return fmt.Sprintf("%d ranks", n)
}
