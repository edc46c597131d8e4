"""Section 6.2 of the paper: a bouncing ball learned by a latent video diffusion transformer.

``videos`` generates the videos exactly, ``tracking`` finds the ball and measures its physics, ``vae`` is the
per-frame autoencoder, ``latents`` holds statistics of latent videos, ``figures`` draws Figures 6 and 7, and
``experiment`` runs the whole pipeline (``python -m gptheory bouncing-ball``)."""
