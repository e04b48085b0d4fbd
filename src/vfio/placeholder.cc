namespace devpass::vfio {}
