#pragma once

// What `devpass inspect BDF` shows: the device as VFIO presents it (regions
// with their capabilities, interrupts, reset), the IOMMU context it is
// attached to (IOVA ranges, page sizes), the group's reserved regions and
// where the MSI-X table and PBA sit. Built as JSON from live objects, so the
// same data feeds --json and the text view, and tests run it on the fake.

#include <nlohmann/json.hpp>
#include <string>

#include "vfio/container.h"
#include "vfio/device.h"

namespace devpass::vfio {

nlohmann::json InspectDevice(const IommuBackend& backend, const Device& device);

// Human-readable rendering of InspectDevice's JSON.
std::string InspectText(const nlohmann::json& report);

// "4KiB", "2MiB", "1GiB" for each bit of a page-size bitmap.
std::vector<std::string> PageSizeNames(uint64_t bitmap);

}  // namespace devpass::vfio
