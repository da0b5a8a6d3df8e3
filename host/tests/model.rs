//! The candle Wav2Vec2ForCTC against transformers: the fixture checkpoint, loaded from
//! its own config.json and model.safetensors, reproduces PyTorch's logits.

mod support;

use candle_core::{Device, Tensor};
use sangdam_host::model::Wav2Vec2ForCtc;

#[test]
fn reproduces_transformers_logits() {
    let dir = support::shared("fixtures/wav2vec2-hf-tiny");
    let model = Wav2Vec2ForCtc::load(&dir, &Device::Cpu).unwrap();
    for name in ["utt0", "utt1"] {
        let (shape, x) = support::npy(&dir.join(format!("{name}.input_values.npy")));
        let x: Vec<f32> = x.iter().map(|v| *v as f32).collect();
        let input = Tensor::from_vec(x, (shape[0], shape[1]), &Device::Cpu).unwrap();
        let logits = model.forward(&input).unwrap();
        let (rshape, reference) = support::npy(&dir.join(format!("{name}.logits.torch.npy")));
        assert_eq!(logits.dims(), rshape.as_slice(), "{name}");
        let ours: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
        let d = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        eprintln!("{name}: candle vs transformers logits, max abs diff {d:.2e}");
        assert!(d <= 1e-4, "{name}: max abs diff {d}");
    }
}

/// `sin`-filled tensors, the same in the test and in the PyTorch script that made the
/// expected numbers below.
fn det(shape: &[usize], f: f64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    (0..n).map(|i| (i as f64 * f).sin() as f32).collect()
}

/// The model's convolution (`model::conv1d`) against `torch.nn.functional.conv1d` on
/// batches of several items, grouped and not: output and the gradients of
/// `sum(y * r)` for weight, input and bias. candle 0.11.1's own conv1d fails this
/// (wrong gradients for every item after the first), which kept the trainer on CTC's
/// blank plateau. Expected values from PyTorch 2.15 in float64:
///
/// ```python
/// det = lambda shape, f: torch.sin(torch.arange(math.prod(shape), dtype=torch.float64) * f).reshape(shape)
/// w = det((cout, cin // g, k), 0.37); x = det((b, cin, L), 1.1); bias = det((cout,), 0.5)
/// y = F.conv1d(x, w, bias, stride=s, groups=g); (y * det(y.shape, 0.7)).sum().backward()
/// ```
#[test]
#[allow(clippy::approx_constant)] // measured values that happen to be near 2/pi
fn batched_grouped_conv_gradients_match_pytorch() {
    use candle_core::Var;
    let d = Device::Cpu;
    #[allow(clippy::type_complexity)]
    let cases: [(
        (usize, usize, usize, usize, usize, usize, usize),
        [&[f32]; 4],
    ); 2] = [
        (
            (2, 3, 2, 3, 2, 9, 1),
            [
                &[
                    0.140969, -0.184485, 0.0761703, 0.0948325, 0.3374, 0.454937, 0.650274,
                    0.302825, 0.103865, 0.0663329, -0.181939, 0.14781, 0.632229, 0.29151, 0.547799,
                    0.586865,
                ],
                &[
                    -0.198962, -0.247237, -0.0253298, 0.257511, 0.175271, -0.0985071, -0.258992,
                    -0.0644612, 0.200513, 0.247482, 0.302147, 0.0266233, -0.317546, -0.211973,
                    0.125246, 0.317237, 0.0748225, -0.249358,
                ],
                &[
                    -0.0627415, -0.177489, -0.202514, 0.418817, 0.87849, 0.818146, 1.54633,
                    0.832689, 1.36867, -0.322637, -0.333394, 0.615849, 0.990677, 2.6545, 1.84882,
                    3.4447, 1.83743, 1.70677, -0.224187, -0.119006, 0.750203, 0.462216, 1.48222,
                    0.82605, 1.51713, 0.80138, 0.149197, -0.160062, -0.681073, -1.16967, -0.16299,
                    -0.175514, 0.43175, 0.901188, 0.823431, 1.37065, -1.38852, -1.4792, -1.66195,
                    -0.300835, 0.67275, 1.01901, 2.69104, 1.85961, 1.73516, -1.07478, -0.634411,
                    -0.308341, -0.10455, 0.773806, 0.474483, 1.49202, 0.830359, 0.172465,
                ],
                &[3.52358, -1.9423],
            ],
        ),
        (
            (3, 4, 6, 4, 1, 10, 2),
            [
                &[
                    0.286773,
                    0.399876,
                    0.075992,
                    -0.330937,
                    -0.376215,
                    -0.0103628,
                    0.366814,
                    0.232167,
                    0.0945584,
                    0.377536,
                    0.771859,
                    0.846609,
                    0.520098,
                    0.14914,
                    1.04108,
                    1.19867,
                    0.965908,
                    0.597157,
                    0.495395,
                    0.771827,
                    1.12437,
                    1.1454,
                    1.31526,
                    1.13787,
                    0.807076,
                    0.684375,
                    0.903854,
                    1.22566,
                    0.820615,
                    0.641033,
                    0.754612,
                    1.03723,
                    1.18004,
                    1.02698,
                    0.745313,
                    0.62502,
                    0.808415,
                    0.762383,
                    0.537228,
                    0.379001,
                    0.460614,
                    0.692879,
                    0.292087,
                    0.39772,
                    0.0687221,
                    -0.335376,
                    -0.372973,
                    -0.00298185,
                    0.370268,
                    0.226789,
                    0.0960624,
                    0.384278,
                    0.776472,
                    0.844051,
                    0.513164,
                    0.145408,
                    1.04635,
                    1.19787,
                    0.959914,
                    0.592523,
                    0.497184,
                    0.778085,
                    1.12825,
                    1.15035,
                    1.31513,
                    1.1328,
                    0.802602,
                    0.685386,
                    0.909245,
                    1.22954,
                    0.8161,
                    0.640419,
                    0.758571,
                    1.04144,
                    1.1799,
                    1.02265,
                    0.741524,
                    0.628946,
                    0.809746,
                    0.759664,
                    0.53343,
                    0.378274,
                    0.463752,
                    0.696453,
                    0.297309,
                    0.39544,
                    0.0614306,
                    -0.33971,
                    -0.369613,
                    0.00440006,
                    0.373605,
                    0.22149,
                    0.0976866,
                    0.391051,
                    0.780992,
                    0.841379,
                    0.506221,
                    0.141781,
                    1.05155,
                    1.19696,
                    0.953884,
                    0.587966,
                    0.499081,
                    0.784362,
                    1.13205,
                    1.15526,
                    1.31491,
                    1.12769,
                    0.798189,
                    0.686494,
                    0.914663,
                    1.23335,
                    0.811613,
                    0.63989,
                    0.762577,
                    1.0456,
                    1.17967,
                    1.01827,
                    0.737787,
                    0.632863,
                    0.811011,
                    0.756895,
                    0.529653,
                    0.377617,
                    0.466934,
                    0.699996,
                ],
                &[
                    -0.262552, -0.0977708, 0.173855, 0.255491, -0.0250863, -0.245271, -0.197421,
                    0.0661716, -0.0245371, 0.225834, 0.229412, -0.0177132, -0.265997, -0.141474,
                    0.137653, 0.266351, 0.253399, 0.182012, -0.0882789, -0.262098, -0.074137,
                    0.192498, 0.248769, 0.033184, -0.116952, 0.159826, 0.261945, 0.0778079,
                    -0.239377, -0.211865, 0.0471742, 0.254661, 0.210429, 0.239928, 0.00723111,
                    -0.233368, -0.161182, 0.115062, 0.265566, 0.125857, 0.195447, -0.0703274,
                    -0.259248, -0.16486, 0.179252, 0.254787, 0.0518883, -0.207714,
                ],
                &[
                    -0.0472343, 0.380021, 1.08178, 1.66761, 1.13155, 0.0633078, -1.03471, -1.27945,
                    -0.935862, -0.363237, 0.616873, 1.07156, 0.981532, 0.225983, -1.13441,
                    -1.96127, -1.86571, -1.02733, -0.253918, 0.114686, -0.480782, -0.843153,
                    -0.71933, 0.0176712, 1.06306, 1.60847, 1.39739, 0.494374, -0.157526, -0.307879,
                    0.106191, 0.676107, 1.46297, 2.04556, 1.53323, 0.299793, -1.07464, -1.47879,
                    -1.20815, -0.564907, -0.308391, -0.731644, -0.889661, -0.516417, 0.6366,
                    1.49021, 1.64296, 0.884554, 0.129105, -0.215966, -0.247616, 0.0477864,
                    0.826827, 1.73416, 2.02062, 1.35676, 0.054784, -0.671345, -0.822103, -0.487742,
                    0.321297, 0.112014, -0.596607, -1.47802, -1.57209, -0.926772, 0.154417,
                    0.730302, 0.738393, 0.370751, -0.490977, -1.0412, -1.24402, -0.836911,
                    0.562749, 1.69774, 2.03426, 1.39108, 0.570919, 0.0243789, 0.312806, 0.250034,
                    -0.315646, -1.22289, -1.67976, -1.34661, -0.380125, 0.517711, 0.824683,
                    0.549216, -0.403638, -1.11271, -1.69355, -1.71936, -0.605657, 0.792894,
                    1.81853, 1.60545, 0.961873, 0.305333, 0.204097, 0.746692, 1.2331, 1.25513,
                    0.290747, -0.810378, -1.53037, -1.12327, -0.478342, -0.0113929, 0.316614,
                    0.220522, -0.391682, -1.32486, -2.01784, -1.7618, -0.677162, 0.28086, 0.716505,
                    0.543913,
                ],
                &[
                    0.0216863, -0.248777, -0.114486, 0.206071, 0.191356, -0.13469,
                ],
            ],
        ),
    ];
    for ((b, cin, cout, k, s, l, g), [y_ref, gw_ref, gx_ref, gb_ref]) in cases {
        let w = Var::from_vec(det(&[cout, cin / g, k], 0.37), (cout, cin / g, k), &d).unwrap();
        let x = Var::from_vec(det(&[b, cin, l], 1.1), (b, cin, l), &d).unwrap();
        let bias = Var::from_vec(det(&[cout], 0.5), cout, &d).unwrap();
        let y =
            sangdam_host::model::conv1d(x.as_tensor(), w.as_tensor(), Some(bias.as_tensor()), s, g)
                .unwrap();
        let dims = y.dims3().unwrap();
        let r = Tensor::from_vec(det(&[dims.0, dims.1, dims.2], 0.7), dims, &d).unwrap();
        let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        for (name, ours, want) in [
            ("y", flat(&y), y_ref),
            (
                "weight grad",
                flat(grads.get(w.as_tensor()).unwrap()),
                gw_ref,
            ),
            (
                "input grad",
                flat(grads.get(x.as_tensor()).unwrap()),
                gx_ref,
            ),
            (
                "bias grad",
                flat(grads.get(bias.as_tensor()).unwrap()),
                gb_ref,
            ),
        ] {
            assert_eq!(ours.len(), want.len(), "{name}");
            let worst = ours
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-4,
                "case b={b} cin={cin} cout={cout} k={k} s={s} g={g}: {name} off by {worst}"
            );
        }
    }
}
