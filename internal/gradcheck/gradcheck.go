// Package gradcheck is the finite-difference step of the gradient checks in the tests of nn
// and distill: the central difference of a scalar function in one element of its input. Each
// check compares it with its op's analytic gradient under its own tolerance.
package gradcheck

// Central returns the central difference (f(x[j]+h) - f(x[j]-h)) / 2h of f in x[j], where f
// reads x (a graph's input value, say); x[j] is restored.
func Central(f func() float64, x []float64, j int, h float64) float64 {
	old := x[j]
	x[j] = old + h
	up := f()
	x[j] = old - h
	down := f()
	x[j] = old
	return (up - down) / (2 * h)
}
