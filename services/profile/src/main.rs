examreg_kit::main!(examreg_profile, "profile");
