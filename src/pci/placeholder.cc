namespace devpass::pci {}
