package nn

import (
	"fmt"
	"math/rand/v2"
)

// RNG is the seeded generator behind weight initialisation and dropout masks. The same seed
// gives the same weights and the same masks; its state can be saved with a checkpoint and
// restored, so a resumed run draws exactly the masks it would have drawn.
type RNG struct {
	pcg *rand.PCG
	r   *rand.Rand
}

// NewRNG returns a generator seeded with seed.
func NewRNG(seed uint64) *RNG {
	pcg := rand.NewPCG(seed, 0x5eed5e1b3e9c4a1d)
	return &RNG{pcg: pcg, r: rand.New(pcg)}
}

// Float32 returns a number in [0, 1).
func (g *RNG) Float32() float32 { return g.r.Float32() }

// Float64 returns a number in [0, 1).
func (g *RNG) Float64() float64 { return g.r.Float64() }

// NormFloat64 returns a standard normal number.
func (g *RNG) NormFloat64() float64 { return g.r.NormFloat64() }

// Uint64 returns 64 random bits.
func (g *RNG) Uint64() uint64 { return g.r.Uint64() }

// IntN returns a number in [0, n).
func (g *RNG) IntN(n int) int { return g.r.IntN(n) }

// MarshalBinary saves the generator's state.
func (g *RNG) MarshalBinary() ([]byte, error) { return g.pcg.MarshalBinary() }

// UnmarshalBinary restores a state saved by MarshalBinary.
func (g *RNG) UnmarshalBinary(b []byte) error {
	if err := g.pcg.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("nn: restoring the random generator: %w", err)
	}
	return nil
}
