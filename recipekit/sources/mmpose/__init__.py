"""The MMPose RTMO source family (through MMDeploy): the source, its mmcv-lite layer and its source fix."""
