package train

import (
	"math"
	"slices"
	"sync"

	"github.com/ml-platform/platform/internal/model"
)

const classes = 3

// matrix is the sparse design matrix, held twice: by rows (example i's
// features are rowIndex/rowValue[rowStart[i]:rowStart[i+1]]) for the forward
// pass, and by columns (feature r's examples are colIndex/colValue[
// colStart[r]:colStart[r+1]]) for the gradient. Each pass then walks the big
// weight and gradient arrays in order, and the small per-example arrays at
// random, which fit in cache. The bias is implicit: a last column of ones.
type matrix struct {
	rowStart []int
	rowIndex []uint32
	rowValue []float32

	colStart []int
	colIndex []uint32
	colValue []float32

	label []int     // class of each example, an index into model.Labels
	scale []float64 // weight of each example in the loss, summing to 1
}

func (m *matrix) examples() int { return len(m.label) }

// featurise builds the matrix of texts with the serving featurizer. A
// feature index repeated in one example (a repeated word, a hash collision)
// becomes one entry with the summed value, as the model's dot product sees
// it.
func featurise(f *model.Featurizer, texts []string, labels []int, weights []float64, columns int) *matrix {
	m := &matrix{rowStart: make([]int, 1, len(texts)+1), label: labels}
	buf := make([]model.Feature, 0, 1024)
	for _, text := range texts {
		buf = f.AppendFeatures(buf[:0], f.Tokenize(text))
		slices.SortStableFunc(buf, func(a, b model.Feature) int { return int(a.Index) - int(b.Index) })
		for k, ft := range buf {
			if k > 0 && ft.Index == buf[k-1].Index {
				m.rowValue[len(m.rowValue)-1] += ft.Value
				continue
			}
			m.rowIndex = append(m.rowIndex, ft.Index)
			m.rowValue = append(m.rowValue, ft.Value)
		}
		m.rowStart = append(m.rowStart, len(m.rowIndex))
	}
	// Transpose: count, then fill in example order (so each column lists its
	// examples in order, fixing the order of the gradient's sums).
	m.colStart = make([]int, columns+1)
	for _, r := range m.rowIndex {
		m.colStart[r+1]++
	}
	for r := range columns {
		m.colStart[r+1] += m.colStart[r]
	}
	m.colIndex = make([]uint32, len(m.rowIndex))
	m.colValue = make([]float32, len(m.rowIndex))
	next := slices.Clone(m.colStart[:columns])
	for i := range len(texts) {
		for k := m.rowStart[i]; k < m.rowStart[i+1]; k++ {
			r := m.rowIndex[k]
			m.colIndex[next[r]] = uint32(i)
			m.colValue[next[r]] = m.rowValue[k]
			next[r]++
		}
	}
	var total float64
	for _, w := range weights {
		total += w
	}
	m.scale = make([]float64, len(weights))
	for i, w := range weights {
		m.scale[i] = w / total
	}
	return m
}

// objective is the weighted multinomial log-loss plus L2 penalties: l2 on
// the hashed features' weights, l2Dense on the dense (lexicon) features',
// none on the bias:
//
//	f(W) = sum_i s_i * -log softmax(W x_i)[y_i] + l2/2 * |W_hashed|^2 + l2Dense/2 * |W_dense|^2
//
// Every number is computed by one goroutine in a fixed order (an example's
// logits, a weight's gradient), and the sums over examples run in example
// order after the parallel part, so the result has the same bits whatever
// the number of workers.
type objective struct {
	x       *matrix
	rows    int // features + the bias
	hashed  int // the first hashed rows are penalised by l2, the rest by l2Dense
	l2      float64
	l2Dense float64
	workers int

	loss  []float64 // per example
	delta []float64 // per example and class: s_i * (p_c - [c == y_i])

	// The last point evaluated, so that Grad after Func at the same point
	// (what the line search asks for) costs nothing.
	lastX    []float64
	lastF    float64
	lastGrad []float64
	haveLast bool
}

func newObjective(x *matrix, rows, hashed int, l2, l2Dense float64, workers int) *objective {
	return &objective{
		x: x, rows: rows, hashed: hashed, l2: l2, l2Dense: l2Dense, workers: max(1, workers),
		loss:     make([]float64, x.examples()),
		delta:    make([]float64, x.examples()*classes),
		lastGrad: make([]float64, rows*classes),
	}
}

func (o *objective) dim() int { return o.rows * classes }

// parallel runs fn over [0, n) cut into one contiguous range per worker.
func (o *objective) parallel(n int, fn func(from, to int)) {
	var wg sync.WaitGroup
	for k := range o.workers {
		from, to := k*n/o.workers, (k+1)*n/o.workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(from, to)
		}()
	}
	wg.Wait()
}

// evaluate computes f and its gradient at w.
func (o *objective) evaluate(w []float64) (float64, []float64) {
	if o.haveLast && slices.Equal(o.lastX, w) {
		return o.lastF, o.lastGrad
	}
	x := o.x
	bias := w[(o.rows-1)*classes:]
	// Forward: each example's probabilities, loss and delta.
	o.parallel(x.examples(), func(from, to int) {
		for i := from; i < to; i++ {
			z := [classes]float64{bias[0], bias[1], bias[2]}
			for k := x.rowStart[i]; k < x.rowStart[i+1]; k++ {
				r := int(x.rowIndex[k]) * classes
				v := float64(x.rowValue[k])
				z[0] += v * w[r]
				z[1] += v * w[r+1]
				z[2] += v * w[r+2]
			}
			p := model.Softmax(z)
			y, s := x.label[i], x.scale[i]
			o.loss[i] = -s * math.Log(max(p[y], 1e-300))
			d := o.delta[i*classes : i*classes+classes]
			for c := range classes {
				d[c] = s * p[c]
			}
			d[y] -= s
		}
	})
	// Backward: each feature's gradient, from its column.
	grad := o.lastGrad
	features := o.rows - 1
	o.parallel(features, func(from, to int) {
		for r := from; r < to; r++ {
			var g [classes]float64
			for k := x.colStart[r]; k < x.colStart[r+1]; k++ {
				i := int(x.colIndex[k]) * classes
				v := float64(x.colValue[k])
				g[0] += v * o.delta[i]
				g[1] += v * o.delta[i+1]
				g[2] += v * o.delta[i+2]
			}
			l2 := o.l2
			if r >= o.hashed {
				l2 = o.l2Dense
			}
			for c := range classes {
				grad[r*classes+c] = g[c] + l2*w[r*classes+c]
			}
		}
	})
	var f float64
	var gb [classes]float64
	for i := range x.examples() {
		f += o.loss[i]
		for c := range classes {
			gb[c] += o.delta[i*classes+c]
		}
	}
	copy(grad[features*classes:], gb[:])
	var norm, normDense float64
	for _, v := range w[:o.hashed*classes] {
		norm += v * v
	}
	for _, v := range w[o.hashed*classes : features*classes] {
		normDense += v * v
	}
	f += o.l2/2*norm + o.l2Dense/2*normDense
	o.lastX = append(o.lastX[:0], w...)
	o.lastF, o.haveLast = f, true
	return f, grad
}
