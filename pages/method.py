"""Method: the Fourier map, the two kinds of maps and their loss, SVCCA, cosine, TwoNN and IdCor, caveats."""

from __future__ import annotations

import streamlit as st

from ui.entry import through_app
from ui.picker import current_experiment


def method_ui() -> dict:
    """This page has no widgets that change what it shows; the loaded λ and N are quoted if there is one."""
    experiment = current_experiment()
    if experiment is None:
        return {"lam": None, "n": None}
    return {"lam": experiment.config.lam, "n": experiment.n}


def render_fourier_map() -> None:
    st.header("1. The Fourier map")
    st.markdown("An image x (3 colour channels, H×W pixels) is filtered in frequency space by a map M of the same "
                "shape, one value in [0, 1] per colour channel and spatial frequency:")
    st.latex(r"x_F = \operatorname{Re}\left(\mathcal{F}^{-1}\left(M \odot \mathcal{F} x\right)\right)")
    st.markdown(r"$\mathcal{F}$ is the 2-D discrete Fourier transform over the two pixel axes, ⊙ the element-wise product. "
                "M = 1 everywhere leaves the image unchanged; M = 0 at a frequency removes that wave. The filtered "
                "image goes straight into the frozen classifier. The app shows maps with the zero frequency (the "
                "mean colour) in the centre and frequencies from −H/2 to H/2 − 1 cycles per image on the axes.")


def render_maps(params: dict) -> None:
    st.header("2. Essential and adversarial maps")
    st.markdown("For every image a map is trained from M = 1 with Adam (lr 0.01), clamping M to [0, 1] after each "
                "step, to minimise")
    st.latex(r"\mathcal{L}(M) = \mathrm{CE}\big(f(x_F),\, t\big) + \lambda \sum_{c,u,v} |M_{c,u,v}|")
    st.markdown(
        "- **Essential map**: x is the clean image and t its true label; only images the model classifies correctly.\n"
        "- **Adversarial map**: x is the adversarial image (FMN, PGD or DeepFool, L∞) and t the label the attack "
        "produced; only images classified correctly *and* successfully attacked.\n\n"
        "The L1 term pushes every entry it can to 0, so the map keeps only the frequencies the model needs for "
        "that answer. Training stops once the loss settles (|loss − mean of the last 20| < 10⁻⁵ after step 500) "
        "or after 5000 steps; a map whose filtered image lost the target class is discarded."
    )
    st.markdown(
        "**How unique is one image's map?** The problem is not convex and the solution is very sparse (about 60 of "
        "3072 entries at λ = 0.5), so for some images a change of float rounding alone, e.g. BatchNorm folded into "
        "the convolutions or not, or the image trained in a batch rather than alone, leads to a different sparse "
        "map (measured: 11 of 96 real CIFAR-10 images end below cosine 0.98 between the two, the lowest at 0.27; "
        "`bench/bench_precision.py`). Statistics over hundreds of maps do not depend on this; read a single "
        "image's map as one good solution, not the only one."
    )


def render_metrics(params: dict) -> None:
    st.header("3. Comparing the two sets of maps")
    st.markdown("Each map is flattened to a vector (3·32·32 = 3072 entries; 224×224 maps are pooled to 32×32 first). "
                "Row i of X holds image i's essential map, row i of Y its adversarial map.")
    st.subheader("Cosine similarity")
    st.latex(r"\cos(x_i, y_i) = \frac{x_i \cdot y_i}{\lVert x_i \rVert\, \lVert y_i \rVert}"
             r"\qquad \text{reported as mean} \pm \text{std over the pairs}")
    st.subheader("SVCCA")
    st.markdown("Keep the top singular directions of X and of Y that explain 99 % of the singular-value mass, "
                "project, centre, and take the canonical correlations ρ between the two projections:")
    st.latex(r"\mathrm{SVCCA}(X, Y) = \frac{1}{\min(k_X, k_Y)} \sum_{j} \rho_j")
    st.subheader("Intrinsic dimension (TwoNN) and IdCor")
    st.markdown("For each point, r₁ and r₂ are the distances to its first and second nearest neighbour; "
                "μ = r₂ / r₁ follows a Pareto law whose exponent is the intrinsic dimension d:")
    st.latex(r"-\log\big(1 - F(\mu)\big) = d \, \log \mu \quad\Rightarrow\quad "
             r"\hat d = \frac{\sum_i x_i y_i}{\sum_i x_i^2},\ x_i = \log \mu_{(i)},\ y_i = -\log(1 - i/N)")
    st.markdown("If X and Y are related, their concatenation [X | Y] needs fewer dimensions than the two apart:")
    st.latex(r"\mathrm{IdCor}(X, Y) = \frac{\hat d_X + \hat d_Y - \hat d_{[X|Y]}}{\max(\hat d_X, \hat d_Y)}")
    st.markdown("Significance by permutation: shuffle the rows of Y 100 times and recompute the joint ID;")
    st.latex(r"p = \frac{\#\{\text{shuffled } \hat d_{[X|Y_\pi]} < \hat d_{[X|Y]}\} + 1}{100 + 1}"
             r"\qquad (\text{smallest possible } p = 1/101 \approx 0.01)")
    st.markdown("The same shuffles give IdCor's baseline: the IdCor of each shuffled pairing, "
                r"$(\hat d_X + \hat d_Y - \hat d_{[X|Y_\pi]}) / \max(\hat d_X, \hat d_Y)$, is what unrelated pairs "
                "reach. TwoNN's bias keeps it away from 0, so the tables print its median beside IdCor "
                "(\"shuffled IdCor\"), as they print the re-paired cosine and SVCCA beside theirs.")


def render_defence() -> None:
    st.header("4. Class-level maps as a defence")
    st.markdown(r"One map per class is trained on training images: clean images of the class must stay correct, "
                "and adversarial images pushed into the class must return to their true label. At test time the "
                r"model's first prediction $\hat y$ picks the map $M_{\hat y}$, and the image filtered by $M_{\hat y}$ is "
                "classified again.")
    st.latex(r"\hat y = \arg\max f(x), \qquad y_{\text{defended}} = \arg\max f\big(\operatorname{Re}"
             r"(\mathcal{F}^{-1}(M_{\hat y} \odot \mathcal{F}x))\big)")


def render_caveats(params: dict) -> None:
    st.header("Caveats")
    lam = f" (this experiment: λ = {params['lam']:g})" if params["lam"] is not None else ""
    n = f" This experiment has N = {params['n']} images." if params["n"] is not None else ""
    st.markdown(
        f"- **λ matters a great deal**{lam}: it trades how many maps still give the label against how sparse "
        "they are. With the shipped ResNet-20, λ = 0.5 keeps about 60 % of the maps (median 35–70 non-zero "
        "entries of 3072) and λ = 0.02 keeps all (median about 130). A ResNet-20 described in METHOD.md kept "
        "nothing but the zero frequency in most λ = 0.5 maps: then maps of different images look alike and every "
        "similarity rises. Compare numbers only at the same λ and model.\n"
        "- **Intrinsic dimension needs many points**: the TwoNN estimate is biased with few of them and grows "
        "harder to estimate as the dimension rises; IdCor is not 0 even for independent sets (−0.03 to 0.2 "
        f"measured), so only the p-value decides.{n} The demo's handful of images shows the pipeline, not the "
        "paper's numbers.\n"
        "- **The re-paired baseline**: maps of different images already share structure (the zero frequency, low "
        "frequencies), so cosine and SVCCA are well above 0 for unrelated pairs; the Correlations page shows it.\n"
        "- **SVCCA needs many more pairs than directions**: after centring, both reduced sets lie in one "
        "(N − 1)-dimensional space, so at least k_X + k_Y − (N − 1) of the canonical correlations are exactly 1 for "
        "*any* pairing. With the demo's 20 pairs that is all of them but one, and its SVCCA of 0.94 says nothing; the Correlations "
        "page warns wherever this happens.\n"
        "- **Published-code differences**: the published code rolled the colour channels of saved maps and used max "
        "pooling for 224×224 maps; this project keeps RGB order and defaults to average pooling (METHOD.md)."
    )


through_app()
st.title("How it works")
method_params = method_ui()
render_fourier_map()
render_maps(method_params)
render_metrics(method_params)
render_defence()
render_caveats(method_params)
