"""Audio encoders (architecture only).  Each maps a log-mel batch of shape
(batch, n_frames, n_mels) to a feature map (batch, channels, freq, time)."""
