"""BEV decoder: SECOND backbone and SECONDFPN neck over the fused BEV map."""
