rule upper:
    input: "input/words.txt"
    output: "work/upper.txt"
    shell: "tr a-z A-Z < {input} > {output}"
