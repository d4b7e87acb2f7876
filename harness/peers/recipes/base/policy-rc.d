#!/bin/sh
# Refuse every service start during image builds (invoke-rc.d convention).
exit 101
