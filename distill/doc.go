// Package distill trains a small student model from a trained teacher run: the teacher's logits
// over a transfer set are computed once and cached, and the student learns from a mix of the
// hard labels and the teacher's temperature-softened outputs (Hinton et al. 2015) or from the
// teacher's logits directly (Tang et al. 2019).
//
// A binary teacher gives one logit per text, a teacher of K > 2 classes K logits (softmax over
// them, Hinton et al.'s own setting; see KD and MSE). The student learns the teacher's classes:
// its data must have the teacher's class names in the teacher's order (train.RunInfo.Labels),
// else the run stops with an error naming both lists.
//
// A distillation is a training run of the student (package train) with its own objective
// (train.Objective): ExtraTrain adds the transfer set's unlabelled texts to the training part, and TrainLoss
// gives each batch the loss KD or MSE with the cached teacher logits of its examples, looked up
// by dataset index. The student thus gets train's checkpoints, resume, progress and profiler.
//
// The run directory holds, besides the trainer's files:
//
//	distill.json                what Run was given (Resume rebuilds the hooks from it)
//	teacher_logits.safetensors  the teacher's logits of each transfer example ("logits", F32:
//	                            shape (n) for a binary teacher, (n, K) for K classes) and its
//	                            dataset index ("index", I64), under a key (metadata)
//	                            that hashes the teacher's configuration, vocabulary and best
//	                            weights, the transfer texts and the augmentation settings
//	baseline/                   the student trained alone, when asked for (TrainBaseline)
//	distill_report.md           teacher vs distilled student vs student alone
//
// The transfer set is the train split, then optionally the unlabelled reviews (Config.Unsup),
// then optionally augmented copies of the train reviews (Config.Augment); all of it follows
// from the configuration and the seed, so a resumed run rebuilds the same set and reuses the
// cache. The teacher is run in evaluation mode through train.Load's Predictor; a pass that
// is stopped keeps what it computed, and the resume computes only the rest.
//
// A bigru teacher trained on a feature cache (the default) does not run its encoder here: its
// logits come from its head over the encoder features of two feature caches (package
// features, built with the teacher's encoder settings by train.OpenFeatures): the corpus's,
// which is the cache the teacher was trained on when the student reads the teacher's data,
// reused as it is, and the cache of the unlabelled and augmented texts, built once (resumable,
// with progress) and reused by every later distillation with the same extras. The logits are
// then those of the features the teacher was trained and tested on (float16), and the logits
// key says so.
//
//	cfg := distill.DefaultConfig("runs/lstm-1", "cnn")
//	cfg.Student.Data = archive
//	cfg.Unsup = unsupArchive
//	cfg.TrainBaseline = true
//	cfg.RunDir = "runs/distill-cnn"
//	res, err := distill.Run(ctx, cfg, distill.Hooks{})
//	fmt.Print(res.Report.Text())
package distill
