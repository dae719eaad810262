//! ConnectWise Manage and Datto Autotask clients behind one trait (a later issue).
