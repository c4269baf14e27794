examreg_kit::main!(examreg_biometrics, "biometrics");
