namespace devpass::vmm {}
