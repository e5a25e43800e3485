"""Detection head: CenterHead (CenterPoint) with its targets, losses and box decoding."""
