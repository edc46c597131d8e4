"""A transformer with hand-set weights that computes the score by unrolling gradient descent.

This is the construction behind Theorem 1 of the paper (Lemmas 9-11, Appendix B, and the multiplication module of
Appendix E.3), written as an ordinary ``torch.nn.Module``: a token embedding, a stack of standard residual blocks
(multi-head attention, then a feed-forward layer) and a decoder that reads the score out and clips it. No weight is
learned; every one is written down from the gradient-descent iteration

    s_i <- s_i - eta_t [ alpha_t^2 sum_{|i-j|<J} Gamma_ij Sigma s_j + sigma_t^2 s_i + (v_i - alpha_t mu_i) ],

which :func:`gptheory.unroll.gd_score` runs directly. Nothing in the network solves a linear system: it only adds,
multiplies by fixed matrices, applies ReLU (or softmax inside one attention head) and, in the exact mode, multiplies
two token entries.

Token layout (one token per frame ``i``, width ``D``; :attr:`GDTransformer.layout` names the slots):

* ``x`` -- the frame ``v_i`` (the noisy input), ``mu`` -- the mean ``mu_i`` (a fixed positional table);
* ``e`` -- the frames' sinusoidal embedding (ReLU attention) or ``pos`` -- the features ``(i/N, (i/N)^2)`` (softmax);
* ``one`` -- the constant 1 (attention biases); ``c`` -- the diffusion-time scalars ``alpha_t, alpha_t^2,
  sigma_t^2, eta_t`` (each divided by a known bound so it lies in ``[0, 1]``) and, for softmax, the normaliser ``Z_i``;
* ``r`` -- the offset ``v_i - alpha_t mu_i``, ``s`` -- the GD iterate, and work buffers ``as, bs, g, eg`` (``att``)
  for ``alpha_t^2 s``, ``sigma_t^2 s``, the gradient and ``eta_t`` times the gradient; ``w`` -- the multiplication
  module's scratch space.

One GD step (Lemma 10) is a multiplication module (``alpha_t^2 s``, ``sigma_t^2 s``), an attention block
(``sum_j Gamma_bar_ij Sigma alpha_t^2 s_j`` into the gradient, then a feed-forward layer that adds
``sigma_t^2 s + r``), a second multiplication module (``eta_t`` times the gradient) and a feed-forward update
``s <- s - eta_t g``. The first step (Lemma 9) starts from ``s = 0`` and needs no attention.

* ReLU attention (Lemma 10): inner products of time embeddings ``psi(|i-j|) = <e_i, e_j>`` identify the gap; four
  ReLU heads per gap ``k`` add up to a trapezoid in ``psi`` that is 1 at gap ``k`` and 0 at every other gap, so
  ``4 J`` heads give the band ``|i-j| < J`` exactly.
* Softmax attention (Lemma 11, squared-exponential kernel): the score ``(2 i j - j^2) / ell^2`` of one head gives
  ``softmax_j = Gamma_ij / Z_i`` for the whole row; a feed-forward layer writes ``Z_i`` into the token once, and a
  multiplication module restores the scale.
* Multiplication of a token entry by a diffusion-time scalar: ``mult_depth=None`` uses an exact bilinear layer
  (the operation DiT's adaLN modulation performs); ``mult_depth=m`` uses ReLU feed-forward layers only, through
  Yarotsky's sawtooth approximation of ``w^2`` on ``[0, 1]`` (error ``<= 2^{-2m-2}``) and
  ``z c = (z + c)^2/4 - (z - c)^2/4``. The product error is at most ``B C 2^{-2m-1}`` when ``|z| <= B`` and
  ``0 <= c <= C``; ``m + 1`` feed-forward blocks realise it.

One file per job:

* :mod:`~gptheory.construct.builder` -- the recipe, :func:`build_gd_transformer` (layout, embed, GD steps, decode);
* :mod:`~gptheory.construct.network` -- the module it returns, :class:`GDTransformer`, and the token :class:`Layout`;
* :mod:`~gptheory.construct.layers` -- the standard layers (attention, feed-forward, bilinear, embedding, decoder);
* :mod:`~gptheory.construct.embedding` -- what attention sees of time: :func:`frame_embedding`,
  :func:`gap_inner_products`, :func:`resolution`, :func:`trapezoid`;
* :mod:`~gptheory.construct.heads` -- the attention layers of Lemmas 10 and 11;
* :mod:`~gptheory.construct.modules` -- blocks written slot by slot: exact moves and the multiplication module
  (:func:`sawtooth_square`);
* :mod:`~gptheory.construct.size` -- :func:`size_report`, :func:`format_size_report`, :func:`theorem_orders`;
* :mod:`~gptheory.construct.uniform` -- one network for every ``t in [t0, T]`` (Theorem 1 as stated):
  :func:`build_uniform_transformer`, :func:`worst_condition_number`;
* :mod:`~gptheory.construct.over_times` -- that network against one network per time: :func:`compare_over_times`,
  :class:`OverTimes`.
"""

from .builder import build_gd_transformer
from .embedding import RESOLUTION_TOL, frame_embedding, gap_inner_products, resolution, trapezoid
from .layers import BilinearFeedForward, Block, Decoder, FeedForward, MultiHeadAttention, TokenEmbedding
from .modules import sawtooth_square
from .network import SCALARS, GDTransformer, Layout
from .over_times import OverTimes, compare_over_times
from .size import format_size_report, size_report, theorem_orders
from .uniform import build_uniform_transformer, worst_condition_number

__all__ = [
    "RESOLUTION_TOL",
    "SCALARS",
    "BilinearFeedForward",
    "Block",
    "Decoder",
    "FeedForward",
    "GDTransformer",
    "Layout",
    "MultiHeadAttention",
    "OverTimes",
    "TokenEmbedding",
    "build_gd_transformer",
    "build_uniform_transformer",
    "compare_over_times",
    "format_size_report",
    "frame_embedding",
    "gap_inner_products",
    "resolution",
    "sawtooth_square",
    "size_report",
    "theorem_orders",
    "trapezoid",
    "worst_condition_number",
]
