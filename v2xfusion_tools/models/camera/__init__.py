"""Camera branch: image backbone, feature pyramid, LSS view transform and BEV pooling."""
