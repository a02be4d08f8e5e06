//! A 2-D convolution with valid padding and any stride, on channels-last tensors, written as
//! patch gathering plus one matrix product. candle's own `conv2d` takes a single stride for both
//! axes, and OverlapNet needs (2, 1); the matrix form also keeps most of the backward pass in gemm.

use super::ops::im2col;
use candle_core::{Result, Tensor};

/// Output length of a valid convolution along one axis.
pub fn valid_len(input: usize, kernel: usize, stride: usize) -> usize {
    if input < kernel {
        0
    } else {
        (input - kernel) / stride + 1
    }
}

/// Valid convolution of `x` (B, H, W, Cin) with `weight` (kh, kw, Cin, Cout) and `bias` (Cout),
/// strides (sh, sw); returns (B, Ho, Wo, Cout).
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: &Tensor, stride: (usize, usize)) -> Result<Tensor> {
    let (b, _, _, cin) = x.dims4()?;
    let (kh, kw, wcin, cout) = weight.dims4()?;
    if wcin != cin {
        candle_core::bail!("conv2d: input has {cin} channels, the kernel expects {wcin}");
    }
    let columns = im2col(x, (kh, kw), stride)?;
    let (_, ho, wo, patch) = columns.dims4()?;
    let kernel = weight.reshape((patch, cout))?;
    columns
        .reshape((b * ho * wo, patch))?
        .matmul(&kernel)?
        .broadcast_add(bias)?
        .reshape((b, ho, wo, cout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Direct evaluation of the same convolution, for comparison.
    fn reference(
        x: &[f32],
        (h, w, cin): (usize, usize, usize),
        k: &[f32],
        (kh, kw, cout): (usize, usize, usize),
        s: (usize, usize),
    ) -> Vec<f32> {
        let (ho, wo) = (valid_len(h, kh, s.0), valid_len(w, kw, s.1));
        let mut out = vec![0.0; ho * wo * cout];
        for oy in 0..ho {
            for ox in 0..wo {
                for o in 0..cout {
                    let mut acc = 0.0;
                    for dy in 0..kh {
                        for dx in 0..kw {
                            for c in 0..cin {
                                let xi = ((oy * s.0 + dy) * w + ox * s.1 + dx) * cin + c;
                                acc += x[xi] * k[((dy * kw + dx) * cin + c) * cout + o];
                            }
                        }
                    }
                    out[(oy * wo + ox) * cout + o] = acc;
                }
            }
        }
        out
    }

    #[test]
    fn strided_conv_matches_direct_evaluation() -> Result<()> {
        let dev = Device::Cpu;
        for (h, w, kh, kw, s) in [
            (9, 13, 3, 4, (2, 1)),
            (8, 11, 2, 3, (2, 2)),
            (7, 10, 3, 3, (1, 1)),
            (6, 30, 1, 15, (1, 15)),
        ] {
            let (cin, cout) = (3, 2);
            let x: Vec<f32> = (0..h * w * cin).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
            let k: Vec<f32> = (0..kh * kw * cin * cout)
                .map(|i| ((i * 13 % 11) as f32 - 5.0) / 5.0)
                .collect();
            let xt = Tensor::from_vec(x.clone(), (1, h, w, cin), &dev)?;
            let kt = Tensor::from_vec(k.clone(), (kh, kw, cin, cout), &dev)?;
            let bias = Tensor::zeros(cout, candle_core::DType::F32, &dev)?;
            let got = conv2d(&xt, &kt, &bias, s)?;
            let (ho, wo) = (valid_len(h, kh, s.0), valid_len(w, kw, s.1));
            assert_eq!(got.dims(), &[1, ho, wo, cout]);
            let want = reference(&x, (h, w, cin), &k, (kh, kw, cout), s);
            let got = got.flatten_all()?.to_vec1::<f32>()?;
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b} for {h}x{w} k {kh}x{kw} s {s:?}");
            }
        }
        Ok(())
    }
}
