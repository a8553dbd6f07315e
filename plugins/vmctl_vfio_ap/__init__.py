"""vfio_ap plugin: s390 AP crypto passthrough through a matrix mdev."""
