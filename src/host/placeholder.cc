namespace devpass {}
