examreg_kit::main!(examreg_verification, "verification");
