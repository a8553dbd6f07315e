"""VFIO plugin: vfio-pci passthrough, IOMMU groups, the container/DMA model, type1 IOPF (RFC)."""
