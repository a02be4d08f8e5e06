//! Hand-written CPU kernels with their gradients, where candle's generic ops spend most of a
//! step moving memory: gathering convolution patches (`im2col`, and its adjoint `col2im`), the
//! delta layer's all-pairs absolute difference, and the yaw head's sums along the circular
//! diagonals of a Gram matrix.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

/// The contiguous f32 data of a tensor's storage.
fn data<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { bail!("{op}: f32 only") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{op}: input must be contiguous"),
    }
}

/// Patch gathering for a valid convolution: (B, H, W, C) -> (B, Ho, Wo, kh * kw * C), patch
/// entries in (dy, dx, c) order.
#[derive(Debug, Clone, Copy)]
struct Im2Col {
    kernel: (usize, usize),
    stride: (usize, usize),
    /// Input (H, W, C).
    input: (usize, usize, usize),
}

impl Im2Col {
    fn out_hw(&self) -> (usize, usize) {
        let (h, w, _) = self.input;
        (
            (h - self.kernel.0) / self.stride.0 + 1,
            (w - self.kernel.1) / self.stride.1 + 1,
        )
    }
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = data(s, l, "im2col")?;
        let (h, w, c) = self.input;
        let b = x.len() / (h * w * c);
        let (kh, kw) = self.kernel;
        let (ho, wo) = self.out_hw();
        let patch = kh * kw * c;
        let mut out = vec![0f32; b * ho * wo * patch];
        out.par_chunks_mut(wo * patch).enumerate().for_each(|(row, dst)| {
            let (bi, oy) = (row / ho, row % ho);
            for ox in 0..wo {
                for dy in 0..kh {
                    let y = oy * self.stride.0 + dy;
                    let src = ((bi * h + y) * w + ox * self.stride.1) * c;
                    let at = ox * patch + dy * kw * c;
                    dst[at..at + kw * c].copy_from_slice(&x[src..src + kw * c]);
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, patch))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Col2Im(*self))?))
    }
}

/// The adjoint of [`Im2Col`]: patch gradients summed back onto the input pixels.
struct Col2Im(Im2Col);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = data(s, l, "col2im")?;
        let op = &self.0;
        let (h, w, c) = op.input;
        let (kh, kw) = op.kernel;
        let (ho, wo) = op.out_hw();
        let patch = kh * kw * c;
        let b = g.len() / (ho * wo * patch);
        let mut out = vec![0f32; b * h * w * c];
        out.par_chunks_mut(h * w * c).enumerate().for_each(|(bi, dst)| {
            for oy in 0..ho {
                for ox in 0..wo {
                    let src = ((bi * ho + oy) * wo + ox) * patch;
                    for dy in 0..kh {
                        let at = ((oy * op.stride.0 + dy) * w + ox * op.stride.1) * c;
                        let from = src + dy * kw * c;
                        for (d, s) in dst[at..at + kw * c].iter_mut().zip(&g[from..from + kw * c]) {
                            *d += s;
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, h, w, c))))
    }
}

/// Patches of `x` (B, H, W, C) for a valid `kernel` convolution with `stride`:
/// (B, Ho, Wo, kh * kw * C), differentiable.
pub fn im2col(x: &Tensor, kernel: (usize, usize), stride: (usize, usize)) -> Result<Tensor> {
    let (_, h, w, c) = x.dims4()?;
    if h < kernel.0 || w < kernel.1 {
        bail!(
            "im2col: input {h}x{w} is smaller than the kernel {}x{}",
            kernel.0,
            kernel.1
        );
    }
    x.contiguous()?.apply_op1(Im2Col {
        kernel,
        stride,
        input: (h, w, c),
    })
}

/// The delta layer: `|left[b, i, c] - right[b, j, c]|` for all i, j: (B, N, C) x (B, M, C) ->
/// (B, N, M, C).
struct AbsDiff;

impl CustomOp2 for AbsDiff {
    fn name(&self) -> &'static str {
        "abs_diff_pairs"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (left, right) = (data(s1, l1, "abs_diff")?, data(s2, l2, "abs_diff")?);
        let (b, n, c) = l1.shape().dims3()?;
        let m = l2.shape().dims3()?.1;
        let mut out = vec![0f32; b * n * m * c];
        out.par_chunks_mut(m * c).enumerate().for_each(|(row, dst)| {
            let (bi, i) = (row / n, row % n);
            let a = &left[(bi * n + i) * c..(bi * n + i + 1) * c];
            let rb = &right[bi * m * c..(bi + 1) * m * c];
            for (d, r) in dst.chunks_exact_mut(c).zip(rb.chunks_exact(c)) {
                for k in 0..c {
                    d[k] = (a[k] - r[k]).abs();
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, n, m, c))))
    }

    fn bwd(
        &self,
        left: &Tensor,
        right: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = left.dim(1)?;
        let m = right.dim(1)?;
        let both = left.apply_op3_no_bwd(right, &grad.contiguous()?, &AbsDiffGrad)?;
        Ok((Some(both.narrow(1, 0, n)?), Some(both.narrow(1, n, m)?)))
    }
}

/// Gradients of [`AbsDiff`]: (B, N + M, C), the left's then the right's.
struct AbsDiffGrad;

/// Rows of `left` whose gradient one task computes (and whose share of the right's it sums).
const GRAD_ROWS: usize = 15;

impl CustomOp3 for AbsDiffGrad {
    fn name(&self) -> &'static str {
        "abs_diff_pairs_grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (left, right, grad) = (
            data(s1, l1, "abs_diff")?,
            data(s2, l2, "abs_diff")?,
            data(s3, l3, "abs_diff")?,
        );
        let (b, n, c) = l1.shape().dims3()?;
        let m = l2.shape().dims3()?.1;
        let chunks = n.div_ceil(GRAD_ROWS);
        // Each task: rows [i0, i1) of one batch item -> (their left gradient, a partial right gradient).
        let parts: Vec<(usize, usize, Vec<f32>, Vec<f32>)> = (0..b * chunks)
            .into_par_iter()
            .map(|t| {
                let (bi, ch) = (t / chunks, t % chunks);
                let (i0, i1) = (ch * GRAD_ROWS, ((ch + 1) * GRAD_ROWS).min(n));
                let mut dl = vec![0f32; (i1 - i0) * c];
                let mut dr = vec![0f32; m * c];
                let rb = &right[bi * m * c..(bi + 1) * m * c];
                for i in i0..i1 {
                    let a = &left[(bi * n + i) * c..(bi * n + i + 1) * c];
                    let g = &grad[(bi * n + i) * m * c..(bi * n + i + 1) * m * c];
                    let dli = &mut dl[(i - i0) * c..(i - i0 + 1) * c];
                    for j in 0..m {
                        let (r, gj, drj) = (
                            &rb[j * c..(j + 1) * c],
                            &g[j * c..(j + 1) * c],
                            &mut dr[j * c..(j + 1) * c],
                        );
                        for k in 0..c {
                            let s = if a[k] > r[k] {
                                gj[k]
                            } else if a[k] < r[k] {
                                -gj[k]
                            } else {
                                0.0
                            };
                            dli[k] += s;
                            drj[k] -= s;
                        }
                    }
                }
                (bi, i0, dl, dr)
            })
            .collect();
        let mut out = vec![0f32; b * (n + m) * c];
        for (bi, i0, dl, dr) in parts {
            let base = bi * (n + m) * c;
            out[base + i0 * c..base + i0 * c + dl.len()].copy_from_slice(&dl);
            for (o, d) in out[base + n * c..base + (n + m) * c].iter_mut().zip(&dr) {
                *o += d;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, n + m, c))))
    }
}

/// The yaw head's circular correlation read off the Gram matrix `G = L R^T` of two volumes:
/// `out[b, s] = sum_i G[b, (i + s - N/2) mod N, i]`, (B, N, N) -> (B, N). A gather of the N^2
/// entries into shift order (and the N^2 index it needs) cost more than the Gram matrix itself.
struct CircularDiagonals;

/// Calls `f(s, k)` for every entry `k = r * n + i` of an n x n matrix with the shift
/// `s = (r - i + n/2) mod n` it belongs to, row by row, without a modulo per entry.
fn for_each_diagonal_entry(n: usize, mut f: impl FnMut(usize, usize)) {
    let half = n / 2;
    for r in 0..n {
        // s = base - i for i <= base, base + n - i beyond.
        let base = (r + half) % n;
        for i in 0..=base {
            f(base - i, r * n + i);
        }
        for i in base + 1..n {
            f(base + n - i, r * n + i);
        }
    }
}

impl CustomOp1 for CircularDiagonals {
    fn name(&self) -> &'static str {
        "circular_diagonals"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let gram = data(s, l, "circular_diagonals")?;
        let (b, n, m) = l.shape().dims3()?;
        if n != m {
            bail!("circular_diagonals: a {n} x {m} matrix is not square");
        }
        let mut out = vec![0f32; b * n];
        out.par_chunks_mut(n).enumerate().for_each(|(bi, dst)| {
            let g = &gram[bi * n * n..(bi + 1) * n * n];
            for_each_diagonal_entry(n, |s, k| dst[s] += g[k]);
        });
        Ok((CpuStorage::F32(out), Shape::from((b, n))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (b, n, _) = arg.dims3()?;
        let g = grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; b * n * n];
        out.par_chunks_mut(n * n).enumerate().for_each(|(bi, dst)| {
            let gb = &g[bi * n..(bi + 1) * n];
            for_each_diagonal_entry(n, |s, k| dst[k] = gb[s]);
        });
        Ok(Some(Tensor::from_vec(out, (b, n, n), arg.device())?))
    }
}

/// `out[b, s] = sum_i gram[b, (i + s - N/2) mod N, i]`: (B, N, N) -> (B, N), differentiable.
pub fn circular_diagonals(gram: &Tensor) -> Result<Tensor> {
    gram.contiguous()?.apply_op1(CircularDiagonals)
}

/// `|left[b, i, :] - right[b, j, :]|` for every i, j: (B, N, C) x (B, M, C) -> (B, N, M, C),
/// differentiable.
pub fn abs_diff_pairs(left: &Tensor, right: &Tensor) -> Result<Tensor> {
    let (b, _, c) = left.dims3()?;
    let (rb, _, rc) = right.dims3()?;
    if (b, c) != (rb, rc) {
        bail!("abs_diff_pairs: {:?} and {:?} do not pair", left.dims(), right.dims());
    }
    left.contiguous()?.apply_op2(&right.contiguous()?, AbsDiff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Largest gap between the analytic gradient of `sum(f(x) * probe)` and central differences.
    fn gradient_gap(x: &Var, f: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<f32> {
        let probe = f(x.as_tensor())?.rand_like(-1.0, 1.0)?;
        let loss = |t: &Tensor| -> Result<f32> { (f(t)? * &probe)?.sum_all()?.to_scalar::<f32>() };
        let grads = (f(x.as_tensor())? * &probe)?.sum_all()?.backward()?;
        let analytic = grads
            .get(x)
            .expect("x has a gradient")
            .flatten_all()?
            .to_vec1::<f32>()?;
        let base = x.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let mut gap = 0f32;
        for k in (0..base.len()).step_by(7) {
            let mut plus = base.clone();
            let mut minus = base.clone();
            plus[k] += 1e-2;
            minus[k] -= 1e-2;
            let tp = Tensor::from_vec(plus, x.shape(), &Device::Cpu)?;
            let tm = Tensor::from_vec(minus, x.shape(), &Device::Cpu)?;
            let numeric = (loss(&tp)? - loss(&tm)?) / 2e-2;
            gap = gap.max((numeric - analytic[k]).abs());
        }
        Ok(gap)
    }

    #[test]
    fn circular_diagonals_match_the_gather_and_their_gradient_matches_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let (b, n) = (2, 9);
        let gram = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, n, n), &dev)?)?;
        let ours = circular_diagonals(gram.as_tensor())?.to_vec2::<f32>()?;
        let g = gram.as_tensor().to_vec3::<f32>()?;
        for bi in 0..b {
            for s in 0..n {
                let want: f32 = (0..n).map(|i| g[bi][(i + s + n - n / 2) % n][i]).sum();
                assert!((ours[bi][s] - want).abs() < 1e-5, "b {bi} s {s}");
            }
        }
        let gap = gradient_gap(&gram, &circular_diagonals)?;
        assert!(gap < 1e-2, "gap {gap}");
        Ok(())
    }

    #[test]
    fn im2col_gradient_matches_finite_differences() -> Result<()> {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 7, 11, 3), &Device::Cpu)?)?;
        for stride in [(1, 1), (2, 1), (2, 2)] {
            let gap = gradient_gap(&x, &|t| im2col(t, (3, 4), stride))?;
            assert!(gap < 1e-2, "stride {stride:?}: gap {gap}");
        }
        Ok(())
    }

    #[test]
    fn abs_diff_matches_broadcasting_and_its_gradient_matches_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        // Left values on a 0.1 grid offset by 0.05, right values on the grid: every difference is
        // at least 0.05 from the kink of |x|, beyond the finite differences' 0.01 steps.
        let grid = |t: Tensor| -> Result<Tensor> { (t * 10.0)?.round()? / 10.0 };
        let left = Var::from_tensor(&(grid(Tensor::randn(0f32, 1.0, (2, 17, 5), &dev)?)? + 0.05)?)?;
        let right = grid(Tensor::randn(0f32, 1.0, (2, 9, 5), &dev)?)?;
        let direct = left
            .as_tensor()
            .unsqueeze(2)?
            .broadcast_sub(&right.unsqueeze(1)?)?
            .abs()?;
        let ours = abs_diff_pairs(left.as_tensor(), &right)?;
        assert_eq!(ours.dims(), &[2, 17, 9, 5]);
        assert_eq!((ours - direct)?.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
        let gap = gradient_gap(&left, &|t| abs_diff_pairs(t, &right))?;
        assert!(gap < 1e-2, "left gap {gap}");
        let rvar = Var::from_tensor(&right)?;
        let gap = gradient_gap(&rvar, &|t| abs_diff_pairs(left.as_tensor(), t))?;
        assert!(gap < 1e-2, "right gap {gap}");
        Ok(())
    }
}
