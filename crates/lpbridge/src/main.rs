fn main() {
    println!("lpbridge: under construction");
}
